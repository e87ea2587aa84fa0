"""The engines that run a model: transformers, llama.cpp (and remote endpoints in ``endpoint``)."""
