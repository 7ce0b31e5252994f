//! Python-compatible JSON (being written).
