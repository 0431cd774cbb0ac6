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
{{- fail (printf "limits.%s is not a limit; known: maxValueBytes, maxDepth, maxObjects, maxElements, maxMessageBytes, maxSessions, maxWaitersPerSession" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (ne .Values.mode "standalone") }}
{{- fail "serviceMonitor needs mode=standalone: sidecar pods have no Service (scrape them with your own PodMonitor)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "serviceMonitor needs metrics.enabled" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret with tls.crt and tls.key (and ca.crt for tls.clientCA)" }}
{{- end }}
{{- if not (has .Values.durability.fsync (list "always" "everysec" "no")) }}
{{- fail (printf "durability.fsync must be always, everysec or no, not %q" (toString .Values.durability.fsync)) }}
{{- end }}
{{- if and .Values.tls.clientCA (not .Values.tls.enabled) }}
{{- fail "tls.clientCA needs tls.enabled" }}
{{- end }}
{{- if and (eq .Values.mode "standalone") (not .Values.auth.token.enabled) (not .Values.tls.enabled) (not .Values.allowInsecureNonLoopback) }}
{{- fail "standalone mode listens on 0.0.0.0, and statehub-server refuses to start there without a token or TLS: keep auth.token.enabled=true (the default), or set tls.enabled with tls.existingSecret, or set allowInsecureNonLoopback=true if a NetworkPolicy already keeps everyone else out" }}
{{- end }}
{{- end }}

{{/*
The Secret holding the token, and where it is mounted.
*/}}
{{- define "statehub.tokenSecret" -}}
{{- default (printf "%s-token" (include "statehub.fullname" .)) .Values.auth.token.existingSecret }}
{{- end }}

{{- define "statehub.authDir" -}}/etc/statehub/auth{{- end }}
{{- define "statehub.dataDir" -}}/var/lib/statehub{{- end }}

{{/*
The data dir's volume: a PersistentVolumeClaim in standalone mode with
persistence on (the chart's or persistence.existingClaim), else an emptyDir.
Only with durability.enabled.
*/}}
{{- define "statehub.persistent" -}}
{{- if and (eq .Values.mode "standalone") .Values.persistence.enabled }}true{{ end }}
{{- end }}

{{- define "statehub.claimName" -}}
{{- default (printf "%s-data" (include "statehub.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}
{{- define "statehub.tlsDir" -}}/etc/statehub/tls{{- end }}

{{/*
The limits keys and the server flags they become.
*/}}
{{- define "statehub.limitFlags" -}}
maxValueBytes: --max_value_bytes
maxDepth: --max_depth
maxObjects: --max_objects
maxElements: --max_elements
maxMessageBytes: --max_message_bytes
maxSessions: --max_sessions
maxWaitersPerSession: --max_waiters_per_session
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
    {{- if .Values.auth.token.enabled }}
    - --auth_token_file={{ include "statehub.authDir" . }}/{{ .Values.auth.token.secretKey }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - --tls_cert={{ include "statehub.tlsDir" . }}/tls.crt
    - --tls_key={{ include "statehub.tlsDir" . }}/tls.key
    {{- if .Values.tls.clientCA }}
    - --tls_client_ca={{ include "statehub.tlsDir" . }}/ca.crt
    {{- end }}
    {{- end }}
    {{- if .Values.allowInsecureNonLoopback }}
    - --allow_insecure_non_loopback
    {{- end }}
    {{- if .Values.socket.groupAccess }}
    - --unix_socket_group_access
    {{- end }}
    {{- if .Values.durability.enabled }}
    - --data_dir={{ include "statehub.dataDir" . }}
    - --fsync={{ .Values.durability.fsync }}
    {{- end }}
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
  {{- /* Kubernetes' gRPC probe cannot speak TLS: with TLS on, the probes
         check that the port accepts connections instead. */}}
  {{- $handler := dict "grpc" (dict "port" (int .Values.ports.grpc)) }}
  {{- if .Values.tls.enabled }}
  {{- $handler = dict "tcpSocket" (dict "port" "grpc") }}
  {{- end }}
  livenessProbe:
    {{- toYaml (merge (deepCopy $handler) .Values.livenessProbe) | nindent 4 }}
  readinessProbe:
    {{- toYaml (merge (deepCopy $handler) .Values.readinessProbe) | nindent 4 }}
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
    {{- if .Values.auth.token.enabled }}
    - name: auth
      mountPath: {{ include "statehub.authDir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      mountPath: {{ include "statehub.tlsDir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.durability.enabled }}
    - name: data
      mountPath: {{ include "statehub.dataDir" . }}
    {{- end }}
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
  {{- /* 0440, not 0400: the files belong to root and the pod's fsGroup,
         and group read is how the non-root server reads them (with an
         fsGroup the kubelet adds it to a 0400 anyway). Nobody can write
         them. */}}
  {{- if .Values.auth.token.enabled }}
  - name: auth
    secret:
      secretName: {{ include "statehub.tokenSecret" . }}
      defaultMode: 0440
      items:
        - key: {{ .Values.auth.token.secretKey }}
          path: {{ .Values.auth.token.secretKey }}
  {{- end }}
  {{- if .Values.tls.enabled }}
  - name: tls
    secret:
      secretName: {{ .Values.tls.existingSecret }}
      defaultMode: 0440
  {{- end }}
  {{- /* The pod's fsGroup makes the volume writable by the non-root
         server. */}}
  {{- if .Values.durability.enabled }}
  - name: data
    {{- if include "statehub.persistent" . }}
    persistentVolumeClaim:
      claimName: {{ include "statehub.claimName" . }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  {{- end }}
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
