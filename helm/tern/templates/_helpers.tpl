{{/* The chart's name. */}}
{{- define "tern.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* release-chart, or fullnameOverride; at most 63 characters. */}}
{{- define "tern.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's full name: tern.componentName (dict "root" $ "component" "ingress"). */}}
{{- define "tern.componentName" -}}
{{- printf "%s-%s" (include "tern.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The selector labels of a component. */}}
{{- define "tern.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tern.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The one label helper: every object's labels, with its component when it has one. */}}
{{- define "tern.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tern.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tern
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.global.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image of a component: its own image block over global.image. */}}
{{- define "tern.image" -}}
{{- $image := mergeOverwrite (deepCopy .root.Values.global.image) (default dict .values.image) -}}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{- define "tern.pullPolicy" -}}
{{- $image := mergeOverwrite (deepCopy .root.Values.global.image) (default dict .values.image) -}}
{{- $image.pullPolicy -}}
{{- end -}}

{{/* The Secret holding the database and NATS URLs the chart writes (when not existing ones). */}}
{{- define "tern.connectionSecret" -}}
{{- printf "%s-connection" (include "tern.fullname" .) -}}
{{- end -}}

{{/* TERN_DATABASE_URL, TERN_NATS_URL and logging: what every Tern container needs. */}}
{{- define "tern.commonEnv" -}}
- name: TERN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if and .Values.database.existingSecret (not .Values.evaluation.enabled) }}
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
      {{- else }}
      name: {{ include "tern.connectionSecret" . }}
      key: database-url
      {{- end }}
- name: TERN_NATS_URL
  valueFrom:
    secretKeyRef:
      {{- if and .Values.nats.existingSecret (not .Values.evaluation.enabled) }}
      name: {{ .Values.nats.existingSecret }}
      key: {{ .Values.nats.key }}
      {{- else }}
      name: {{ include "tern.connectionSecret" . }}
      key: nats-url
      {{- end }}
- name: TERN_LOG_FORMAT
  value: {{ .Values.global.logFormat | quote }}
{{- with .Values.global.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The admin server (/healthz, /readyz, /metrics) of the ingress, the workers and the
     operator; the API serves those on its own port. */}}
{{- define "tern.adminEnv" -}}
- name: TERN_ADMIN_LISTEN
  value: "0.0.0.0:9090"
{{- end -}}

{{/* Traces (the ingress and the workers): tern.tracingEnv (dict "root" $ "service" "tern-ingress"). */}}
{{- define "tern.tracingEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ .service }}
{{- with .root.Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The pod-level settings every component shares: scheduling and the pod security context. */}}
{{- define "tern.podSpec" -}}
{{- with .root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml (mergeOverwrite (deepCopy .root.Values.global.podSecurityContext) (default dict .values.podSecurityContext)) | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The container security context of a component. */}}
{{- define "tern.securityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.global.securityContext) (default dict .values.securityContext)) -}}
{{- end -}}

{{/* The pod template's metadata of a component. */}}
{{- define "tern.podMetadata" -}}
labels:
  {{- include "tern.selectorLabels" . | nindent 2 }}
  {{- with .root.Values.global.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .root.Values.global.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The probes on the named port: /healthz for liveness, /readyz (off while draining) for
     readiness. */}}
{{- define "tern.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: {{ . }}}
  periodSeconds: 2
  failureThreshold: 1
{{- end -}}
