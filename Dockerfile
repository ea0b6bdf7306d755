# mailbot for a host (many agencies on one PostgreSQL): `mailbot host worker` and `mailbot host console`.
# Build: docker build -t mailbot .      Try: docker compose up   (compose.yaml)
# Two stages: wheels are built with the compilers of the first; the final image has none, and runs
# as an unprivileged user.
FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md rules.yaml mailbot.yaml ./
COPY templates ./templates
COPY mailbot ./mailbot
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[host]"

FROM python:3.12-slim
# the Thai fonts ship inside the package; tzdata for Asia/Bangkok
RUN apt-get update && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 mailbot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "mailbot-saraban[host]" && rm -rf /wheels
USER mailbot
WORKDIR /agencies
ENV TZ=Asia/Bangkok PYTHONUNBUFFERED=1
# each agency's folder (its mailbot.yaml, rules, templates, data and registers) lives under /agencies
VOLUME ["/agencies"]
EXPOSE 8480
ENTRYPOINT ["mailbot"]
CMD ["host", "worker"]
