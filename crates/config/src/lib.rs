//! Typed settings of dpm and dpe bound from module homes, with every problem reported at once.
