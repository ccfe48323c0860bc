"""PII detection and masking: offline Presidio engine, column classification, vectorized masking."""
