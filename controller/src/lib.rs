//! The Weft controller: logical model, store, API, southbound, compiler, reconciler.
