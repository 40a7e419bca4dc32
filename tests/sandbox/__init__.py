"""The sandbox emulator's own test suite."""
