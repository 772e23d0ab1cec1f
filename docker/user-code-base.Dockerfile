# The base of every user-code image: Partita's SDK, code server and run worker, nothing of the
# user's. A user image adds its package and serves it (`code-server`); the same image runs its
# location's runs as Kubernetes Jobs (`execute-run`, started by the control plane).
# Build from the repository root:  docker build -f docker/user-code-base.Dockerfile -t partita-user-code-base .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN groupadd --gid 10001 partita && useradd --uid 10001 --gid 10001 --no-create-home partita

WORKDIR /opt/partita
COPY pyproject.toml README.md ./
COPY code_server ./code_server
COPY control_plane ./control_plane
COPY launcher ./launcher
COPY partita ./partita
RUN pip install . && rm -rf /opt/partita

WORKDIR /app
USER 10001:10001
EXPOSE 4000
ENTRYPOINT ["partita"]
CMD ["code-server", "--help"]
