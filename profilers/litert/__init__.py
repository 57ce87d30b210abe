"""LiteRT / TFLite runners: the local interpreter (:mod:`profilers.litert.run`), TFLite's
``benchmark_model`` on an Android phone over adb (:mod:`profilers.litert.adb`) and the parser of
``benchmark_model`` output (:mod:`profilers.litert.parse`)."""
