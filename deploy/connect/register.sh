#!/bin/sh
# Registers every connector in this directory with the Kafka Connect REST API, then
# waits until each one and its tasks are RUNNING. Run by the compose service
# connect-init (curlimages/curl); usable by hand too:
#   CONNECT_URL=http://127.0.0.1:8083 deploy/connect/register.sh
#
# Each <name>.json holds one connector's configuration; <name> is the connector's name.
# PUT /connectors/<name>/config creates the connector or updates it in place, so running
# this again after editing a file applies the change. Sources go first: the sinks write
# rows that the sources must already be capturing.
set -eu

connect=${CONNECT_URL:-http://connect:8083}
dir=$(dirname "$0")

echo "waiting for Kafka Connect at $connect"
tries=0
until curl -fsS -o /dev/null "$connect/connector-plugins"; do
	tries=$((tries + 1))
	if [ "$tries" -ge 90 ]; then
		echo "Kafka Connect did not answer at $connect within 3 minutes" >&2
		exit 1
	fi
	sleep 2
done

for f in "$dir"/*-source.json "$dir"/*-sink.json; do
	name=$(basename "$f" .json)
	code=$(curl -sS -o /tmp/connect-response -w '%{http_code}' -X PUT \
		-H 'Content-Type: application/json' --data @"$f" "$connect/connectors/$name/config")
	case $code in
	200 | 201) echo "registered $name" ;;
	*)
		echo "registering $name failed with HTTP $code:" >&2
		cat /tmp/connect-response >&2
		echo >&2
		exit 1
		;;
	esac
done

for f in "$dir"/*-source.json "$dir"/*-sink.json; do
	name=$(basename "$f" .json)
	tries=0
	while :; do
		status=$(curl -fsS "$connect/connectors/$name/status" || true)
		case $status in
		*'"state":"FAILED"'*)
			echo "$name failed: $status" >&2
			exit 1
			;;
		*'"tasks":[{'*)
			if ! echo "$status" | grep -Eq '"state":"(UNASSIGNED|PAUSED|RESTARTING)"'; then
				echo "$name is running"
				break
			fi
			;;
		esac
		tries=$((tries + 1))
		if [ "$tries" -ge 60 ]; then
			echo "$name is not running after 2 minutes: $status" >&2
			exit 1
		fi
		sleep 2
	done
done
