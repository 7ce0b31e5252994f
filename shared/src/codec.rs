//! Python codec names and decoders (being written).
