"""The AI participant: its runtime configuration, when it answers, its per-chat settings, its
reply jobs and the prompt it reads. The jobs run in `workers.ai_runner`."""
