# Sourced by .ci/run: install (if needed) and start a local PostgreSQL for the store tests,
# then export NBTRACK_TEST_POSTGRES_URL. Loopback only; a throwaway database per CI run.
# A free loopback port (54329 if it is free): another PostgreSQL on this machine must not clash.
pg_port=$(python3 - <<'PY'
import socket
for port in [54329, 0]:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
PY
)
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_data=$(mktemp -d /tmp/nbtrack-pg.XXXXXX)
chown postgres:postgres "$pg_data"
# From /: su keeps the working directory, which the postgres user may not be allowed to enter.
pushd / >/dev/null
su postgres -c "$pg_bin/initdb -D $pg_data -A trust -U postgres" >/dev/null
su postgres -c "$pg_bin/pg_ctl -D $pg_data -o '-p $pg_port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $pg_data/log -w start" >/dev/null
su postgres -c "$pg_bin/createdb -h 127.0.0.1 -p $pg_port nbtrack_test"
popd >/dev/null
export NBTRACK_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/nbtrack_test"
echo "PostgreSQL $($pg_bin/postgres --version | awk '{print $3}') on 127.0.0.1:$pg_port"
trap "su postgres -c '$pg_bin/pg_ctl -D $pg_data -m fast stop' >/dev/null 2>&1 || true" EXIT
