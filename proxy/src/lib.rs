//! iacscope proxy library.
