# The Partita control plane image: `partita control-plane` with PostgreSQL and Kubernetes support.
# Build from the repository root:  docker build -f docker/control-plane.Dockerfile -t partita-control-plane .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 partita && useradd --uid 10001 --gid 10001 --no-create-home partita

WORKDIR /opt/partita
COPY pyproject.toml README.md ./
COPY code_server ./code_server
COPY control_plane ./control_plane
COPY launcher ./launcher
COPY partita ./partita
RUN pip install . && rm -rf /opt/partita

USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["partita"]
CMD ["control-plane", "--host=0.0.0.0", "--port=3000"]
