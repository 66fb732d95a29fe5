{{/*
Environment shared by every container that runs the alga-psa-ee image: secrets
as explicit references. Non-secret settings come from the app ConfigMap
(envFrom, see sebastian.envFrom).
*/}}
{{- define "sebastian.secretEnv" -}}
- name: DB_PASSWORD_SERVER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.passwordKey | quote }}
- name: NEXTAUTH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.appSecret | quote }}
      key: {{ .Values.secrets.nextAuthSecretKey | quote }}
- name: ALGA_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.appSecret | quote }}
      key: {{ .Values.secrets.encryptionKeyKey | quote }}
- name: API_KEY_SALT
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.appSecret | quote }}
      key: {{ .Values.secrets.apiKeySaltKey | quote }}
{{- if and .Values.redis.enabled .Values.redis.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret | quote }}
      key: {{ .Values.redis.auth.passwordKey | quote }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.existingSecret }}
- name: STORAGE_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret | quote }}
      key: access-key-id
- name: STORAGE_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret | quote }}
      key: secret-access-key
{{- end }}
{{- end }}

{{/*
Owner-role credentials, for the setup job and backups only.
*/}}
{{- define "sebastian.adminEnv" -}}
- name: DB_HOST_DIRECT
  value: {{ .Values.database.directHost | quote }}
- name: DB_PORT_DIRECT
  value: {{ .Values.database.directPort | quote }}
- name: DB_USER_ADMIN
  value: {{ .Values.database.adminUser | quote }}
- name: DB_PASSWORD_ADMIN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.adminPasswordKey | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.adminPasswordKey | quote }}
{{- end }}

{{/*
envFrom of alga-psa-ee containers: the app ConfigMap, plus the optional
integrations Secret.
*/}}
{{- define "sebastian.envFrom" -}}
- configMapRef:
    name: {{ include "sebastian.componentName" (dict "ctx" . "component" "config") }}
{{- with .Values.secrets.integrationsSecret }}
- secretRef:
    name: {{ . | quote }}
    optional: true
{{- end }}
{{- end }}

{{/*
Checksum annotations that roll pods when their configuration changes.
*/}}
{{- define "sebastian.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/config/app-configmap.yaml") . | sha256sum }}
checksum/feature-flags: {{ include (print .Template.BasePath "/config/feature-flags-configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Volumes shared by the alga-psa-ee containers: writable tmp and cache (the root
file system is read-only), feature flags, logging config.
*/}}
{{- define "sebastian.appVolumes" -}}
- name: tmp
  emptyDir: {}
- name: next-cache
  emptyDir:
    sizeLimit: 1Gi
- name: feature-flags
  configMap:
    name: {{ include "sebastian.componentName" (dict "ctx" . "component" "feature-flags") }}
- name: logging
  configMap:
    name: {{ include "sebastian.componentName" (dict "ctx" . "component" "logging") }}
{{- end }}

{{/*
Mounts matching sebastian.appVolumes.
*/}}
{{- define "sebastian.appVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: next-cache
  mountPath: /app/server/.next/cache
- name: feature-flags
  mountPath: /etc/alga/feature-flags
  readOnly: true
- name: logging
  mountPath: /etc/alga/logging
  readOnly: true
{{- end }}
