{{/*
Expand the name of the chart.
*/}}
{{- define "sebastian.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this
(by the DNS naming spec). If the release name already contains the chart name it
is used as the full name.
*/}}
{{- define "sebastian.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "sebastian.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "sebastian.labels" -}}
helm.sh/chart: {{ include "sebastian.chart" . }}
{{ include "sebastian.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alga-psa
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "sebastian.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sebastian.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use.
*/}}
{{- define "sebastian.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sebastian.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Labels of one component: common labels plus app.kubernetes.io/component.
Usage: include "sebastian.componentLabels" (dict "ctx" $ "component" "server")
*/}}
{{- define "sebastian.componentLabels" -}}
{{ include "sebastian.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component.
*/}}
{{- define "sebastian.componentSelectorLabels" -}}
{{ include "sebastian.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of one component's resources: <fullname>-<component>, at most 63 characters.
*/}}
{{- define "sebastian.componentName" -}}
{{- printf "%s-%s" (include "sebastian.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common annotations (metadata.annotations), empty when none are configured.
*/}}
{{- define "sebastian.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
Public base URL of the application.
Precedence: .Values.appUrl, then https://<host>, then http://localhost:<port>.
*/}}
{{- define "sebastian.appUrl" -}}
{{- if .Values.appUrl }}
{{- .Values.appUrl | trimSuffix "/" }}
{{- else if .Values.host }}
{{- printf "https://%s" .Values.host }}
{{- else }}
{{- printf "http://localhost:%d" (int .Values.server.port) }}
{{- end }}
{{- end }}

{{/*
Host name of the application (without scheme), derived from appUrl when host is empty.
*/}}
{{- define "sebastian.host" -}}
{{- if .Values.host }}
{{- .Values.host }}
{{- else if .Values.appUrl }}
{{- (urlParse .Values.appUrl).host | splitList ":" | first }}
{{- end }}
{{- end }}

{{/*
Image reference of a component. Empty repository/tag fall back to the server image.
Usage: include "sebastian.image" (dict "image" .Values.worker.image "fallback" .Values.server.image)
*/}}
{{- define "sebastian.image" -}}
{{- $repo := .image.repository | default .fallback.repository }}
{{- $tag := .image.tag | default .fallback.tag }}
{{- printf "%s:%s" $repo (toString $tag) }}
{{- end }}

{{/*
Storage class line for a PVC spec, honouring global.storageClass.
"-" means no storage class (storageClassName: "").
*/}}
{{- define "sebastian.storageClass" -}}
{{- $sc := .persistence.storageClass | default .global.storageClass }}
{{- if $sc }}
{{- if eq "-" $sc }}
storageClassName: ""
{{- else }}
storageClassName: {{ $sc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Host of the Redis service the application uses.
*/}}
{{- define "sebastian.redisHost" -}}
{{- if .Values.redis.enabled }}
{{- include "sebastian.componentName" (dict "ctx" . "component" "redis") }}
{{- else }}
{{- required "redis.external.host is required when redis.enabled is false" .Values.redis.external.host }}
{{- end }}
{{- end }}

{{/*
Port of the Redis service the application uses.
*/}}
{{- define "sebastian.redisPort" -}}
{{- if .Values.redis.enabled }}
{{- .Values.redis.service.port }}
{{- else }}
{{- .Values.redis.external.port }}
{{- end }}
{{- end }}

{{/*
Name of the PVC used for local file storage.
*/}}
{{- define "sebastian.filesClaim" -}}
{{- if .Values.storage.persistence.existingClaim }}
{{- .Values.storage.persistence.existingClaim }}
{{- else }}
{{- include "sebastian.componentName" (dict "ctx" . "component" "files") }}
{{- end }}
{{- end }}

{{/*
Name of the setup job's service account (a hook resource when the job is a hook).
*/}}
{{- define "sebastian.setupServiceAccountName" -}}
{{- include "sebastian.componentName" (dict "ctx" . "component" "setup") }}
{{- end }}

{{/*
Whether the setup job is rendered at all.
*/}}
{{- define "sebastian.setupEnabled" -}}
{{- if and .Values.setup.enabled (ne (toString .Values.bootstrap.mode) "skip") }}true{{ end }}
{{- end }}
