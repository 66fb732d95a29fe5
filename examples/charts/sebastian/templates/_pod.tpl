{{/*
Scheduling fields of a pod spec (node selector, tolerations, affinity, spread,
priority). Usage:
  include "sebastian.podScheduling" (dict "ctx" $ "component" "server" "values" .Values.server)
*/}}
{{- define "sebastian.podScheduling" -}}
{{- $v := .values }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.affinity }}
affinity:
  {{- toYaml $v.affinity | nindent 2 }}
{{- else if eq (toString $v.podAntiAffinityPreset) "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "sebastian.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 14 }}
{{- else if eq (toString $v.podAntiAffinityPreset) "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "sebastian.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
imagePullSecrets of a pod spec.
*/}}
{{- define "sebastian.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  {{- if kindIs "string" . }}
  - name: {{ . | quote }}
  {{- else }}
  - name: {{ .name | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A probe from values, without the chart-only "enabled" key.
Usage: include "sebastian.probe" (dict "name" "livenessProbe" "probe" .Values.server.livenessProbe)
*/}}
{{- define "sebastian.probe" -}}
{{- if .probe.enabled }}
{{ .name }}:
  {{- toYaml (omit .probe "enabled") | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Init container that waits until PostgreSQL accepts connections.
Usage: include "sebastian.waitForDatabase" (dict "ctx" $ "host" <host> "port" <port>)
*/}}
{{- define "sebastian.waitForDatabase" -}}
{{- $ctx := .ctx }}
{{- if $ctx.Values.database.waitForReady }}
{{- $img := $ctx.Values.cronJobs.dbBackup.image }}
- name: wait-for-database
  image: "{{ $img.repository }}:{{ $img.tag }}"
  imagePullPolicy: {{ $img.pullPolicy }}
  command: ["/bin/sh", "/scripts/wait-for.sh"]
  env:
    - name: WAIT_HOST
      value: {{ .host | quote }}
    - name: WAIT_PORT
      value: {{ .port | quote }}
    - name: WAIT_TIMEOUT_SECONDS
      value: "600"
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop:
        - ALL
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      cpu: 100m
      memory: 64Mi
  volumeMounts:
    - name: scripts
      mountPath: /scripts
      readOnly: true
{{- end }}
{{- end }}

{{/*
The scripts volume (ConfigMap with shell helpers from files/scripts).
*/}}
{{- define "sebastian.scriptsVolume" -}}
- name: scripts
  configMap:
    name: {{ include "sebastian.componentName" (dict "ctx" . "component" "scripts") }}
    defaultMode: 0555
{{- end }}
