//! Linearizability checker: history format, models, Wing-Gong-Lowe search, counterexamples.
