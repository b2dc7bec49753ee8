// Package deploy holds no code. Its directory holds the deployment files of the
// docker-compose stack (Kafka Connect connectors, PostgreSQL schemas, concord's
// configuration, Prometheus rules and Grafana dashboards), and its tests check that
// those files, the top-level docker-compose.yml and the Dockerfile agree with each
// other and with concord: topics, keys, tables, columns, mounts, metric names, and
// that the alert rules pass promtool's unit tests.
package deploy
