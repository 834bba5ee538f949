"""LLM provider adapters (OpenAI, Anthropic, OpenAI-compatible), the model catalogue, pricing
and local token counting. Filled by the AI participant issue."""
