# artbooth on a GPU host: `docker run --gpus all -v artbooth-data:/data --env-file .env artbooth`
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip tini \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# torch first and pinned: the project's range admits it, so the project install adds no second torch.
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY bot bot
COPY contract contract
COPY inference inference
COPY jobs jobs
COPY migrations migrations
RUN pip install -e .

# The database, uploads, results, LoRAs and the Hugging Face cache all live on the volume.
ENV DATA_DIR=/data HF_HOME=/data/hf MODELS=sd15 DEVICE=auto INFERENCE=embedded
VOLUME ["/data"]
# tini as PID 1: it forwards signals and reaps orphans (a killed worker's children).
ENTRYPOINT ["/usr/bin/tini", "--"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
