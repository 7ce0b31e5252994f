//! Prompt detection (being written).
