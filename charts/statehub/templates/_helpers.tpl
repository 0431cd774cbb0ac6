{{/*
Names and labels, in the shape `helm create` uses.
*/}}
{{- define "statehub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "statehub.fullname" -}}
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

{{- define "statehub.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "statehub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "statehub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "statehub.labels" -}}
helm.sh/chart: {{ include "statehub.chart" . }}
{{ include "statehub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Checks the values that templates cannot render sensibly; called once from
each mode's workload so every render goes through it.
*/}}
{{- define "statehub.validate" -}}
{{- if not (has .Values.mode (list "standalone" "sidecar")) }}
{{- fail (printf "mode must be standalone or sidecar, not %q" (toString .Values.mode)) }}
{{- end }}
{{- /* spdlog reads an unknown level as "off": a typo would hide every log. */}}
{{- if not (has .Values.logLevel (list "trace" "debug" "info" "warn" "error" "critical" "off")) }}
{{- fail (printf "logLevel must be trace, debug, info, warn, error, critical or off, not %q" (toString .Values.logLevel)) }}
{{- end }}
{{- range $key, $_ := .Values.limits }}
{{- if not (hasKey (include "statehub.limitFlags" $ | fromYaml) $key) }}
{{- fail (printf "limits.%s is not a limit; known: maxValueBytes, maxDepth, maxObjects, maxElements, maxMessageBytes" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (ne .Values.mode "standalone") }}
{{- fail "serviceMonitor needs mode=standalone: sidecar pods have no Service (scrape them with your own PodMonitor)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "serviceMonitor needs metrics.enabled" }}
{{- end }}
{{- end }}

{{/*
The limits keys and the server flags they become.
*/}}
{{- define "statehub.limitFlags" -}}
maxValueBytes: --max_value_bytes
maxDepth: --max_depth
maxObjects: --max_objects
maxElements: --max_elements
maxMessageBytes: --max_message_bytes
{{- end }}

{{- define "statehub.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The Unix socket's address, as clients and --listen spell it.
*/}}
{{- define "statehub.socketAddress" -}}
{{- printf "unix://%s/%s" (trimSuffix "/" .Values.socket.dir) .Values.socket.name }}
{{- end }}

{{/*
--listen: the socket in both modes; in standalone also every interface on
the gRPC port, so the Service reaches the pod.
*/}}
{{- define "statehub.listen" -}}
{{- if eq .Values.mode "standalone" }}
{{- printf "%s,0.0.0.0:%d" (include "statehub.socketAddress" .) (int .Values.ports.grpc) }}
{{- else }}
{{- include "statehub.socketAddress" . }}
{{- end }}
{{- end }}

{{/*
The statehub-server container, the same in both modes apart from its
listeners and probes.
*/}}
{{- define "statehub.container" -}}
{{- $flags := include "statehub.limitFlags" . | fromYaml -}}
- name: statehub
  image: {{ include "statehub.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- with .Values.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  args:
    - --listen={{ include "statehub.listen" . }}
    {{- if .Values.metrics.enabled }}
    - --metrics_listen=0.0.0.0:{{ int .Values.ports.metrics }}
    - --metrics_max_lock_names={{ int64 .Values.metrics.maxLockNames }}
    {{- else }}
    - --metrics_listen=
    {{- end }}
    - --lease_ttl={{ .Values.leaseTtl }}
    - --log_level={{ .Values.logLevel }}
    {{- /* Numbers from a values file arrive as floats; int64 keeps
           16777216 from printing as 1.6777216e+07. */}}
    {{- range $key, $value := .Values.limits }}
    - {{ get $flags $key }}={{ int64 $value }}
    {{- end }}
    {{- range .Values.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- if or (eq .Values.mode "standalone") .Values.metrics.enabled }}
  ports:
    {{- if eq .Values.mode "standalone" }}
    - name: grpc
      containerPort: {{ .Values.ports.grpc }}
      protocol: TCP
    {{- end }}
    {{- if .Values.metrics.enabled }}
    - name: metrics
      containerPort: {{ .Values.ports.metrics }}
      protocol: TCP
    {{- end }}
  {{- end }}
  {{- if eq .Values.mode "standalone" }}
  livenessProbe:
    grpc:
      port: {{ .Values.ports.grpc }}
    {{- toYaml .Values.livenessProbe | nindent 4 }}
  readinessProbe:
    grpc:
      port: {{ .Values.ports.grpc }}
    {{- toYaml .Values.readinessProbe | nindent 4 }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: socket
      mountPath: {{ .Values.socket.dir }}
{{- end }}

{{/*
Pod-level settings shared by both modes' pods.
*/}}
{{- define "statehub.podSettings" -}}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: socket
    emptyDir: {}
{{- end }}

{{- define "statehub.podMetadata" -}}
labels:
  {{- include "statehub.labels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or .Values.podAnnotations (eq .Values.mode "sidecar") }}
annotations:
  {{- if eq .Values.mode "sidecar" }}
  # kubectl logs and exec pick the application, not statehub, by default.
  kubectl.kubernetes.io/default-container: {{ .Values.sidecar.app.name }}
  {{- end }}
  {{- with .Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
