"""Personal LoRA training (DreamBooth with class-prior preservation, arXiv 2208.12242, as a peft LoRA).

config.py (TrainConfig) · class_images.py (the per-base, per-class cache) · dataset.py (latents once) ·
loop.py (train_lora, with preemption between optimizer steps) · lora_io.py (save/validate files) ·
job.py (the worker's `train` handler).
"""

from inference.train.config import TrainConfig

__all__ = ["TrainConfig"]
