//! Engine unit tests over the fake backend.
