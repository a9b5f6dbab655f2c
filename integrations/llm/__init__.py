"""The LLM that writes bot replies: Anthropic's Messages API through the official SDK, or an
OpenAI-compatible chat-completions endpoint, chosen per tenant."""
