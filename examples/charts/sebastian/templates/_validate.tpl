{{/*
Checks of value combinations that the JSON schema cannot express. Every check
fails the render with a message that names the offending keys.
*/}}
{{- define "sebastian.validateValues" -}}
{{- $mode := toString .Values.bootstrap.mode }}
{{- if not (has $mode (list "fresh" "recover" "skip")) }}
{{- fail (printf "bootstrap.mode must be fresh, recover or skip (got %q)" $mode) }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.redis.external.host) }}
{{- fail "redis.external.host is required when redis.enabled is false" }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") (not .Values.storage.s3.bucket) }}
{{- fail "storage.s3.bucket is required when storage.type is s3" }}
{{- end }}
{{- if not (has .Values.storage.type (list "local" "s3")) }}
{{- fail (printf "storage.type must be local or s3 (got %q)" .Values.storage.type) }}
{{- end }}
{{- $replicas := int .Values.server.replicaCount }}
{{- if .Values.server.autoscaling.enabled }}
{{- $replicas = int .Values.server.autoscaling.maxReplicas }}
{{- end }}
{{- if and (gt $replicas 1) (eq .Values.storage.type "local") .Values.storage.persistence.enabled (not (has "ReadWriteMany" .Values.storage.persistence.accessModes)) }}
{{- fail "more than one server replica with local storage needs storage.persistence.accessModes to include ReadWriteMany" }}
{{- end }}
{{- if and .Values.appUrl (not (regexMatch "^https?://" .Values.appUrl)) }}
{{- fail (printf "appUrl must start with http:// or https:// (got %q)" .Values.appUrl) }}
{{- end }}
{{- if and .Values.domainSuffix (hasPrefix "." .Values.domainSuffix) }}
{{- fail "domainSuffix must not start with a dot" }}
{{- end }}
{{- end }}
