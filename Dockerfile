# The production image: gunicorn + whitenoise for web; the same image runs worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=brokercrm.settings.production

RUN useradd --create-home --uid 1000 brokercrm
WORKDIR /app

COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install -e .
COPY . .
# collectstatic needs settings to import; the key used here is thrown away with the layer.
RUN SECRET_KEY=build-only-collectstatic-key-0123456789abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=build.invalid \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1jb2xsZWN0c3RhdGljLWtleS0wMDA= \
    FIELD_HASH_KEY=build-only-collectstatic-hash-key-0123456789 \
    python manage.py collectstatic --noinput \
 && mkdir -p /home/brokercrm/beat \
 && chown -R brokercrm /app /home/brokercrm/beat

USER brokercrm
EXPOSE 8000
CMD ["gunicorn", "brokercrm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--config", "python:brokercrm.gunicorn_conf"]
