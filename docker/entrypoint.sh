#!/bin/sh
# The image's roles (see docker/Dockerfile). The role is recorded for docker/healthcheck.sh, so the image's
# one HEALTHCHECK checks whatever this container runs.
set -eu

role="${1:-code-server}"
[ "$#" -gt 0 ] && shift
echo "$role" > /tmp/k2-role

# Spark reaches an s3:// warehouse through Hadoop's S3A connector (added by docker/install-s3a-jars.sh).
# Credentials stay in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), where
# S3A's default provider chain reads them: they are never written to this file.
write_spark_defaults() {
    mkdir -p "$SPARK_CONF_DIR"
    conf="$SPARK_CONF_DIR/spark-defaults.conf"
    : > "$conf"
    if [ -n "${K2_S3_ENDPOINT:-}" ] || [ -n "${AWS_REGION:-}" ]; then
        echo "spark.hadoop.fs.s3.impl org.apache.hadoop.fs.s3a.S3AFileSystem" >> "$conf"
    fi
    if [ -n "${K2_S3_ENDPOINT:-}" ]; then
        # MinIO and most S3-compatible servers want path-style requests.
        echo "spark.hadoop.fs.s3a.endpoint $K2_S3_ENDPOINT" >> "$conf"
        echo "spark.hadoop.fs.s3a.path.style.access true" >> "$conf"
    fi
    if [ -n "${AWS_REGION:-}" ]; then
        echo "spark.hadoop.fs.s3a.endpoint.region $AWS_REGION" >> "$conf"
    fi
}

case "$role" in
    code-server)
        write_spark_defaults
        exec dagster api grpc --host 0.0.0.0 --port 4000 --module-name k2_lakehouse.definitions \
            --working-directory /opt/k2 --location-name k2_lakehouse "$@" ;;
    webserver)
        exec dagster-webserver --host 0.0.0.0 --port 3000 --workspace "$DAGSTER_HOME/workspace.yaml" "$@" ;;
    daemon)
        exec dagster-daemon run --workspace "$DAGSTER_HOME/workspace.yaml" "$@" ;;
    init)
        # Every k2 command applies the warm schema (sql/, idempotent) before it runs.
        exec k2 sql "SELECT 'warm schema applied' AS k2" ;;
    spark-master)
        exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
            --host "${SPARK_MASTER_HOST:-$(hostname)}" --port 7077 --webui-port 8080 "$@" ;;
    spark-worker)
        write_spark_defaults
        # Cores and memory come from SPARK_WORKER_CORES and SPARK_WORKER_MEMORY, which the worker reads itself.
        exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker --webui-port 8081 \
            "${K2_SPARK_MASTER:?set K2_SPARK_MASTER to the master, e.g. spark://spark-master:7077}" "$@" ;;
    *)
        exec "$role" "$@" ;;
esac
