{{/* The release's name for its objects, cut to what Kubernetes allows. */}}
{{- define "regscribe.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (list $ "worker"). */}}
{{- define "regscribe.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects: (list $ "worker"). */}}
{{- define "regscribe.labels" -}}
{{- $ := index . 0 -}}
{{ include "regscribe.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: regscribe
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version }}
{{- end -}}

{{- define "regscribe.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "regscribe.fullname" .) -}}
{{- end -}}

{{- define "regscribe.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* A token of the Secret: the value given, else the one the Secret has, else a new one: (list $ "notify-token" .Values.secrets.notifyToken). */}}
{{- define "regscribe.token" -}}
{{- $ := index . 0 -}}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (include "regscribe.secretName" $) | default dict -}}
{{- index . 2 | default (dig "data" (index . 1) "" $existing | b64dec) | default (randAlphaNum 48) -}}
{{- end -}}

{{/* The environment every component shares. */}}
{{- define "regscribe.env" -}}
- name: REGSCRIBE_NATS_URL
  value: {{ .Values.nats.url | quote }}
- name: REGSCRIBE_REPLICAS
  value: {{ .Values.nats.replicas | quote }}
- name: REGSCRIBE_REGISTRIES
  value: {{ join "," .Values.registries | quote }}
- name: REGSCRIBE_LOG_FORMAT
  value: json
- name: REGSCRIBE_PROVIDER
  value: {{ .Values.model.provider | quote }}
{{- with .Values.model.name }}
- name: REGSCRIBE_MODEL
  value: {{ . | quote }}
{{- end }}
- name: OLLAMA_HOST
  value: {{ .Values.model.ollamaHost | quote }}
{{- with .Values.model.openaiBaseURL }}
- name: OPENAI_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.model.embedModel }}
- name: REGSCRIBE_EMBED_MODEL
  value: {{ . | quote }}
{{- end }}
- name: OPENAI_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "regscribe.secretName" . }}
      key: openai-api-key
      optional: true
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The pod spec fields every component shares, above its containers. */}}
{{- define "regscribe.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The container fields every component shares: (list $ "worker"). */}}
{{- define "regscribe.container" -}}
{{- $ := index . 0 -}}
name: {{ index . 1 }}
image: {{ include "regscribe.image" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
args: [{{ index . 1 | quote }}]
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{/* Probes on a named port. */}}
{{- define "regscribe.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: {{ . }}}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /readyz, port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 3
{{- end -}}

{{/* Volumes every component mounts: /tmp and the registry credentials. */}}
{{- define "regscribe.volumes" -}}
- name: tmp
  emptyDir: {}
- name: registry-credentials
  secret:
    secretName: {{ include "regscribe.secretName" . }}
    optional: true
    items:
      - key: config.json
        path: config.json
{{- end -}}

{{- define "regscribe.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: registry-credentials
  mountPath: /etc/regscribe/docker
  readOnly: true
{{- end -}}

{{/* Pod template metadata: (list $ "worker"). */}}
{{- define "regscribe.podMetadata" -}}
{{- $ := index . 0 -}}
labels:
  {{- include "regscribe.labels" . | nindent 2 }}
  {{- with $.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") $ | sha256sum }}
  {{- with $.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
