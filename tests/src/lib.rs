//! Fake telnet servers for tests.
