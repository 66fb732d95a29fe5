{{/*
Non-secret settings of the alga-psa-ee containers, as ConfigMap data
(KEY: "value" lines). The app ConfigMap renders it; the setup hook job, which
runs before that ConfigMap exists, turns it into plain env entries.
*/}}
{{- define "sebastian.appConfig" -}}
# Runtime
NODE_ENV: "production"
APP_ENV: {{ .Values.environment | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
LOG_FORMAT: {{ .Values.logFormat | quote }}
LOG_CONFIG_FILE: "/etc/alga/logging/logging.json"
FEATURE_FLAGS_FILE: "/etc/alga/feature-flags/feature-flags.json"
NEXT_TELEMETRY_DISABLED: "1"
NODE_OPTIONS: {{ printf "--max-old-space-size=%d" (int .Values.server.nodeHeapMb) | quote }}
# Public addresses
APP_URL: {{ include "sebastian.appUrl" . | quote }}
NEXTAUTH_URL: {{ include "sebastian.appUrl" . | quote }}
APP_HOST: {{ include "sebastian.host" . | quote }}
DOMAIN_SUFFIX: {{ .Values.domainSuffix | quote }}
PORTAL_VANITY_DOMAINS: {{ ternary "true" "false" (not (empty .Values.domainSuffix)) | quote }}
# Database (through the pooler)
DB_TYPE: "postgres"
DB_HOST: {{ .Values.database.host | quote }}
DB_PORT: {{ .Values.database.port | quote }}
DB_NAME_SERVER: {{ .Values.database.name | quote }}
DB_USER_SERVER: {{ .Values.database.user | quote }}
DB_SSL_MODE: {{ .Values.database.sslMode | quote }}
DB_POOL_SIZE: {{ .Values.database.poolSize | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ .Values.database.statementTimeoutMs | quote }}
DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: {{ .Values.database.idleInTransactionTimeoutMs | quote }}
# Redis
REDIS_HOST: {{ include "sebastian.redisHost" . | quote }}
REDIS_PORT: {{ include "sebastian.redisPort" . | quote }}
REDIS_DB: {{ .Values.redis.database | quote }}
REDIS_TLS: {{ ternary "true" "false" (and (not .Values.redis.enabled) .Values.redis.external.tls) | quote }}
# File storage
STORAGE_DEFAULT_PROVIDER: {{ .Values.storage.type | quote }}
STORAGE_LOCAL_BASE_PATH: {{ .Values.storage.local.path | quote }}
STORAGE_MAX_UPLOAD_MB: {{ .Values.storage.local.maxUploadMb | quote }}
{{- if eq .Values.storage.type "s3" }}
STORAGE_S3_ENDPOINT: {{ .Values.storage.s3.endpoint | quote }}
STORAGE_S3_REGION: {{ .Values.storage.s3.region | quote }}
STORAGE_S3_BUCKET: {{ .Values.storage.s3.bucket | quote }}
STORAGE_S3_FORCE_PATH_STYLE: {{ .Values.storage.s3.forcePathStyle | quote }}
{{- end }}
# E-mail
EMAIL_ENABLE: {{ .Values.email.enabled | quote }}
EMAIL_FROM: {{ .Values.email.from | quote }}
{{- if .Values.email.smtpHost }}
EMAIL_PROVIDER: "smtp"
EMAIL_HOST: {{ .Values.email.smtpHost | quote }}
EMAIL_PORT: {{ .Values.email.smtpPort | quote }}
EMAIL_STARTTLS: {{ .Values.email.startTls | quote }}
{{- else }}
EMAIL_PROVIDER: "email-service"
EMAIL_SERVICE_URL: {{ .Values.email.emailServiceUrl | quote }}
{{- end }}
# Workflows
WORKFLOWS_ENABLED: {{ .Values.workflows.enabled | quote }}
TEMPORAL_ADDRESS: {{ .Values.workflows.temporalAddress | quote }}
TEMPORAL_NAMESPACE: {{ .Values.workflows.temporalNamespace | quote }}
TEMPORAL_TASK_QUEUE: {{ .Values.workflows.taskQueue | quote }}
WORKFLOW_WORKER_URL: {{ .Values.workflows.workerUrl | quote }}
# Collaboration
HOCUSPOCUS_ENABLED: {{ .Values.hocuspocus.enabled | quote }}
HOCUSPOCUS_URL: {{ printf "%s%s" (include "sebastian.appUrl" . | replace "https://" "wss://" | replace "http://" "ws://") .Values.hocuspocus.ingressPath | quote }}
HOCUSPOCUS_INTERNAL_URL: {{ printf "http://%s:%d" (include "sebastian.componentName" (dict "ctx" . "component" "hocuspocus")) (int .Values.hocuspocus.service.port) | quote }}
# Authentication
AUTH_SESSION_MAX_AGE_HOURS: {{ .Values.auth.sessionMaxAgeHours | quote }}
AUTH_REQUIRE_2FA: {{ .Values.auth.requireTwoFactor | quote }}
AUTH_PROVIDERS: {{ join "," .Values.auth.providers | quote }}
AUTH_MAX_FAILED_LOGINS: {{ .Values.auth.maxFailedLogins | quote }}
AUTH_LOCKOUT_MINUTES: {{ .Values.auth.lockoutMinutes | quote }}
AUTH_PASSWORD_MIN_LENGTH: {{ .Values.auth.passwordMinLength | quote }}
# Telemetry
TELEMETRY_ENABLED: {{ .Values.telemetry.enabled | quote }}
{{- if .Values.telemetry.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .Values.telemetry.otlpEndpoint | quote }}
OTEL_TRACES_SAMPLER: "parentbased_traceidratio"
OTEL_TRACES_SAMPLER_ARG: {{ .Values.telemetry.sampleRatio | quote }}
OTEL_SERVICE_NAME: {{ include "sebastian.fullname" . | quote }}
{{- end }}
METRICS_ENABLED: {{ .Values.metrics.enabled | quote }}
{{- end }}
