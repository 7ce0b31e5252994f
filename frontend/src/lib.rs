//! iacscope web app.
