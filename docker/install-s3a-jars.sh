#!/bin/sh
# Adds Hadoop's S3A connector to a Spark installation's jars: hadoop-aws of exactly the Hadoop version Spark
# ships (read from its hadoop-client-api jar) and the AWS SDK v2 bundle that Hadoop release was built with
# (read from that release's hadoop-project POM, property aws-java-sdk-v2.version). Hadoop supports S3A only
# with the SDK it was built against, so neither version is guessed. Every jar is checked against the
# repository's SHA-1.
#
# usage: install-s3a-jars.sh SPARK_HOME
# environment: MAVEN_REPOSITORY (default Maven Central), S3A_HADOOP_VERSION and S3A_SDK_VERSION
# (override the derived versions).
set -eu

spark_home="${1:?usage: install-s3a-jars.sh SPARK_HOME}"
jars="$spark_home/jars"
repo="${MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}"

hadoop="${S3A_HADOOP_VERSION:-}"
if [ -z "$hadoop" ]; then
    api=$(ls "$jars"/hadoop-client-api-*.jar 2>/dev/null | head -n 1)
    [ -n "$api" ] || { echo "install-s3a-jars: no hadoop-client-api-*.jar in $jars: is $spark_home a Spark home?" >&2; exit 1; }
    hadoop=$(basename "$api" .jar | sed 's/^hadoop-client-api-//')
fi

sdk="${S3A_SDK_VERSION:-}"
if [ -z "$sdk" ]; then
    pom="$repo/org/apache/hadoop/hadoop-project/$hadoop/hadoop-project-$hadoop.pom"
    sdk=$(curl -fsSL "$pom" | sed -n 's:.*<aws-java-sdk-v2.version>\(.*\)</aws-java-sdk-v2.version>.*:\1:p' | head -n 1)
    [ -n "$sdk" ] || { echo "install-s3a-jars: $pom names no aws-java-sdk-v2.version; set S3A_SDK_VERSION" >&2; exit 1; }
fi

fetch() {  # group path, artifact, version
    url="$repo/$1/$2/$3/$2-$3.jar"
    target="$jars/$2-$3.jar"
    curl -fsSLo "$target" "$url"
    expected=$(curl -fsSL "$url.sha1" | cut -c1-40)
    actual=$(sha1sum "$target" | cut -c1-40)
    if [ "$expected" != "$actual" ]; then
        rm -f "$target"
        echo "install-s3a-jars: $url has SHA-1 $actual, the repository says $expected" >&2
        exit 1
    fi
    echo "install-s3a-jars: $2-$3.jar"
}

fetch org/apache/hadoop hadoop-aws "$hadoop"
fetch software/amazon/awssdk bundle "$sdk"
