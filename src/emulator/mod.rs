//! A local Hugging Face Hub for tests, demos and benchmarks (see hub-api.md §11).
