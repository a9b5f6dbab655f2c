# Image for the web, worker, beat and consumer services of compose.yml.
FROM node:22-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
COPY --from=assets /app/node_modules ./node_modules
RUN SMARTEROS_ENV=development python manage.py collectstatic --noinput -v 0
RUN useradd --system --uid 1000 smarteros
USER smarteros
EXPOSE 8000
CMD ["uvicorn", "smarteros.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "on", "--proxy-headers"]
