"""The Telegram bot (aiogram 3). Imports neither torch, diffusers nor transformers: it starts in a second."""
