{{/*
A scheduled maintenance task: a CronJob that runs
`node dist/cli.js task <cronJobs.<key>.task>` in the server image with the
server's environment. One template per task under templates/cronjobs/ calls it.
Usage:
  include "sebastian.cronTask" (dict "ctx" $ "key" "sessionCleanup" "name" "session-cleanup" "env" (list))
*/}}
{{- define "sebastian.cronTask" -}}
{{- $ctx := .ctx }}
{{- $task := .name }}
{{- $job := index $ctx.Values.cronJobs .key }}
{{- if and $ctx.Values.cronJobs.enabled $job.enabled }}
{{- $name := printf "%s-%s" (include "sebastian.fullname" $ctx) $task | trunc 52 | trimSuffix "-" }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ $name }}
  labels:
    {{- include "sebastian.componentLabels" (dict "ctx" $ctx "component" "cron") | nindent 4 }}
    alga.nine-minds.com/task: {{ $task }}
spec:
  schedule: {{ $job.schedule | quote }}
  {{- with $ctx.Values.cronJobs.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  concurrencyPolicy: {{ $job.concurrencyPolicy }}
  startingDeadlineSeconds: {{ $job.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $ctx.Values.cronJobs.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $ctx.Values.cronJobs.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "sebastian.componentLabels" (dict "ctx" $ctx "component" "cron") | nindent 8 }}
        alga.nine-minds.com/task: {{ $task }}
    spec:
      backoffLimit: {{ $job.backoffLimit }}
      activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
      template:
        metadata:
          annotations:
            {{- include "sebastian.configChecksums" $ctx | nindent 12 }}
          labels:
            {{- include "sebastian.componentLabels" (dict "ctx" $ctx "component" "cron") | nindent 12 }}
            alga.nine-minds.com/task: {{ $task }}
        spec:
          restartPolicy: Never
          serviceAccountName: {{ include "sebastian.serviceAccountName" $ctx }}
          automountServiceAccountToken: false
          {{- include "sebastian.imagePullSecrets" $ctx | nindent 10 }}
          securityContext:
            {{- toYaml $ctx.Values.server.podSecurityContext | nindent 12 }}
          {{- with $ctx.Values.server.nodeSelector }}
          nodeSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctx.Values.server.tolerations }}
          tolerations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          containers:
            - name: task
              image: "{{ $ctx.Values.server.image.repository }}:{{ $ctx.Values.server.image.tag }}"
              imagePullPolicy: {{ $ctx.Values.server.image.pullPolicy }}
              command: ["/bin/sh", "/scripts/run-task.sh"]
              args:
                - {{ $job.task | quote }}
                {{- range $job.args }}
                - {{ . | quote }}
                {{- end }}
              env:
                - name: TASK_NAME
                  value: {{ $job.task | quote }}
                {{- with .env }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
                {{- include "sebastian.secretEnv" $ctx | nindent 16 }}
              envFrom:
                {{- include "sebastian.envFrom" $ctx | nindent 16 }}
              securityContext:
                {{- toYaml $ctx.Values.server.securityContext | nindent 16 }}
              resources:
                {{- toYaml ($job.resources | default $ctx.Values.cronJobs.resources) | nindent 16 }}
              volumeMounts:
                {{- include "sebastian.appVolumeMounts" $ctx | nindent 16 }}
                - name: scripts
                  mountPath: /scripts
                  readOnly: true
                {{- if eq $ctx.Values.storage.type "local" }}
                - name: files
                  mountPath: {{ $ctx.Values.storage.local.path }}
                {{- end }}
          volumes:
            {{- include "sebastian.appVolumes" $ctx | nindent 12 }}
            {{- include "sebastian.scriptsVolume" $ctx | nindent 12 }}
            {{- if eq $ctx.Values.storage.type "local" }}
            - name: files
              {{- if $ctx.Values.storage.persistence.enabled }}
              persistentVolumeClaim:
                claimName: {{ include "sebastian.filesClaim" $ctx }}
              {{- else }}
              emptyDir: {}
              {{- end }}
            {{- end }}
{{- end }}
{{- end }}
