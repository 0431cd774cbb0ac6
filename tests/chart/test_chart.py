"""The Helm chart in charts/statehub, rendered with the real `helm template`
and checked the way a user reading the manifests would: what runs, where it
listens, how it is probed and locked down, and which server flags the values
become.

helm is $HELM, else $(go env GOPATH)/bin/helm (scripts/setup.sh builds it
there), else helm on $PATH. The tests fail, not skip, without it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "statehub"
SOCKET_DIR = "/var/run/statehub"
SOCKET = "unix:///var/run/statehub/statehub.sock"
DATA_DIR = "/var/lib/statehub"
LIMIT_KEYS = (
    "maxValueBytes",
    "maxDepth",
    "maxObjects",
    "maxElements",
    "maxMessageBytes",
    "maxSessions",
    "maxWaitersPerSession",
)

Manifests = dict[tuple[str, str], dict[str, Any]]
TOKEN_ENV = {
    "name": "STATEHUB_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "demo-statehub-token", "key": "token"}},
}


def _find_helm() -> str:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if os.access(go, os.X_OK):
        gopath = subprocess.run(
            [go, "env", "GOPATH"], capture_output=True, text=True, check=True
        ).stdout.strip()
        helm = Path(gopath) / "bin" / "helm"
        if os.access(helm, os.X_OK):
            return str(helm)
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    pytest.fail("helm not found: run scripts/setup.sh, or set $HELM")


@pytest.fixture(scope="session")
def helm() -> str:
    return _find_helm()


def _run(
    helm: str, command: str, values: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    # Values go in as a values file (on stdin), the way users pass them, so
    # numbers arrive as YAML numbers rather than --set strings.
    args = [helm, command]
    if command == "template":
        args += ["demo", str(CHART), "--namespace", "ns"]
    else:
        args += ["--strict", str(CHART)]
    return subprocess.run(
        [*args, "--values", "-"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        check=False,
    )


def render(helm: str, **values: Any) -> Manifests:
    """Renders the chart; the manifests by (kind, name)."""
    result = _run(helm, "template", values)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def render_error(helm: str, **values: Any) -> str:
    """Renders values the chart must refuse; helm's error output."""
    result = _run(helm, "template", values)
    assert result.returncode != 0, "the chart rendered values it should refuse"
    return result.stderr


def pod(manifests: Manifests) -> dict[str, Any]:
    return manifests["Deployment", "demo-statehub"]["spec"]["template"]


def container(manifests: Manifests, name: str = "statehub") -> dict[str, Any]:
    (found,) = [c for c in pod(manifests)["spec"]["containers"] if c["name"] == name]
    return found


def args(manifests: Manifests) -> list[str]:
    return container(manifests)["args"]


def flag(manifests: Manifests, name: str) -> str | None:
    """The value of --name in the statehub container's args (the last one
    wins, as in Abseil); None if absent."""
    values = [a.split("=", 1)[1] for a in args(manifests) if a.startswith(f"--{name}=")]
    return values[-1] if values else None


@pytest.fixture(scope="module")
def standalone(helm: str) -> Manifests:
    return render(helm)


@pytest.fixture(scope="module")
def sidecar(helm: str) -> Manifests:
    return render(helm, mode="sidecar")


# --- Both modes ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_helm_lint_passes_strict(helm: str, mode: str) -> None:
    result = _run(helm, "lint", {"mode": mode})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"tls": {"enabled": True, "existingSecret": "tls", "clientCA": True}},
        {"auth": {"token": {"enabled": False}}, "allowInsecureNonLoopback": True},
        {"mode": "sidecar", "auth": {"token": {"existingSecret": "mine"}}},
    ],
    ids=["mutual-tls", "insecure-allowed", "sidecar-own-secret"],
)
def test_helm_lint_passes_strict_with_security_values(
    helm: str, values: dict[str, Any]
) -> None:
    result = _run(helm, "lint", values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_pod_is_non_root_read_only_and_drops_everything(helm: str, mode: str) -> None:
    manifests = render(helm, mode=mode)
    spec = pod(manifests)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    security = container(manifests)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security.get("runAsNonRoot", True) is True


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_socket_dir_is_an_emptydir_mounted_at_the_socket_path(
    helm: str, mode: str
) -> None:
    manifests = render(helm, mode=mode)
    assert {"name": "socket", "emptyDir": {}} in pod(manifests)["spec"]["volumes"]
    mounts = container(manifests)["volumeMounts"]
    assert {"name": "socket", "mountPath": SOCKET_DIR} in mounts


def test_flags_come_from_values(helm: str, standalone: Manifests) -> None:
    assert flag(standalone, "lease_ttl") == "10s"
    assert flag(standalone, "log_level") == "info"
    assert flag(standalone, "metrics_max_lock_names") == "100"
    assert not [a for a in args(standalone) if a.startswith("--max_")]
    custom = render(
        helm, leaseTtl="1m30s", logLevel="debug", metrics={"maxLockNames": 7}
    )
    assert flag(custom, "lease_ttl") == "1m30s"
    assert flag(custom, "log_level") == "debug"
    assert flag(custom, "metrics_max_lock_names") == "7"


def test_limits_become_max_flags(helm: str) -> None:
    limits = {
        "maxValueBytes": 16777216,
        "maxDepth": 8,
        "maxObjects": 200000,
        "maxElements": 10000000000,
        "maxMessageBytes": 67108864,
        "maxSessions": 500,
        "maxWaitersPerSession": 64,
    }
    assert set(limits) == set(LIMIT_KEYS)
    manifests = render(helm, limits=limits)
    max_args = sorted(a for a in args(manifests) if a.startswith("--max_"))
    # Whole numbers, not the floats a values file's numbers arrive as.
    assert max_args == [
        "--max_depth=8",
        "--max_elements=10000000000",
        "--max_message_bytes=67108864",
        "--max_objects=200000",
        "--max_sessions=500",
        "--max_value_bytes=16777216",
        "--max_waiters_per_session=64",
    ]


def test_unknown_limit_or_log_level_or_mode_is_refused(helm: str) -> None:
    assert "limits.maxObject is not a limit" in render_error(
        helm, limits={"maxObject": 1}
    )
    assert "logLevel must be" in render_error(helm, logLevel="verbose")
    assert "mode must be standalone or sidecar" in render_error(helm, mode="cluster")


def test_extra_args_come_after_the_charts_own(helm: str) -> None:
    manifests = render(helm, extraArgs=["--log_level=warn", "--max_depth=4"])
    assert args(manifests)[-2:] == ["--log_level=warn", "--max_depth=4"]
    assert flag(manifests, "log_level") == "warn"


def test_every_flag_the_chart_passes_exists_in_the_server(helm: str) -> None:
    main_cc = (ROOT / "server" / "main.cc").read_text()
    defined = set(re.findall(r"ABSL_FLAG\(\s*[\w:]+\s*,\s*(\w+)", main_cc))
    assert "listen" in defined
    everything = {
        "limits": dict.fromkeys(LIMIT_KEYS, 1),
        "tls": {"enabled": True, "existingSecret": "tls", "clientCA": True},
        "allowInsecureNonLoopback": True,
        "socket": {"groupAccess": True},
        "durability": {"enabled": True, "fsync": "always"},
    }
    for mode in ("standalone", "sidecar"):
        manifests = render(helm, mode=mode, **everything)
        used = {a[2:].split("=", 1)[0] for a in args(manifests)}
        assert used <= defined, (
            f"{mode}: flags the server does not define: {used - defined}"
        )
        # Everything on renders every security flag, so the check covers them.
        assert {
            "auth_token_file",
            "tls_cert",
            "tls_key",
            "tls_client_ca",
            "allow_insecure_non_loopback",
            "unix_socket_group_access",
            "max_sessions",
            "max_waiters_per_session",
            "data_dir",
            "fsync",
        } <= used, mode


def test_image_tag_defaults_to_app_version(helm: str, standalone: Manifests) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(standalone)["image"] == f"statehub:{app_version}"
    tagged = render(
        helm, image={"repository": "registry.example/statehub", "tag": "abc"}
    )
    assert container(tagged)["image"] == "registry.example/statehub:abc"


def test_grafana_dashboard_configmap_carries_the_dashboard(
    helm: str, standalone: Manifests
) -> None:
    assert "ConfigMap" not in {kind for kind, _ in standalone}
    manifests = render(helm, grafanaDashboard={"enabled": True})
    configmap = manifests["ConfigMap", "demo-statehub-dashboards"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "statehub-locks.json").read_text())
    assert json.loads(configmap["data"]["statehub-locks.json"]) == shipped


# --- Standalone ----------------------------------------------------------


def test_standalone_is_one_deployment_one_service_and_the_token(
    standalone: Manifests,
) -> None:
    assert set(standalone) == {
        ("Deployment", "demo-statehub"),
        ("Service", "demo-statehub"),
        ("Secret", "demo-statehub-token"),
        ("PersistentVolumeClaim", "demo-statehub-data"),
    }


def test_standalone_runs_exactly_one_replica_recreated_on_update(
    standalone: Manifests,
) -> None:
    spec = standalone["Deployment", "demo-statehub"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert len(pod(standalone)["spec"]["containers"]) == 1


def test_standalone_listens_on_the_socket_and_all_interfaces(
    standalone: Manifests,
) -> None:
    assert flag(standalone, "listen") == f"{SOCKET},0.0.0.0:7420"
    assert flag(standalone, "metrics_listen") == "0.0.0.0:9420"


def test_standalone_container_ports(standalone: Manifests) -> None:
    ports = {p["name"]: p["containerPort"] for p in container(standalone)["ports"]}
    assert ports == {"grpc": 7420, "metrics": 9420}


def test_standalone_service_exposes_grpc_and_metrics(standalone: Manifests) -> None:
    service = standalone["Service", "demo-statehub"]["spec"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["ports"]}
    assert ports == {"grpc": (7420, "grpc"), "metrics": (9420, "metrics")}
    assert service["type"] == "ClusterIP"
    labels = pod(standalone)["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()


def test_standalone_probes_are_grpc_health_checks_on_7420(
    standalone: Manifests,
) -> None:
    statehub = container(standalone)
    for probe in ("livenessProbe", "readinessProbe"):
        assert statehub[probe]["grpc"] == {"port": 7420}, probe
        assert "service" not in statehub[probe]["grpc"]  # "" is what reports SERVING


def test_resources_come_from_values(helm: str, standalone: Manifests) -> None:
    assert container(standalone)["resources"]["limits"]["memory"] == "1Gi"
    resources = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    assert container(render(helm, resources=resources))["resources"] == resources


def test_service_monitor_is_off_by_default(standalone: Manifests) -> None:
    assert "ServiceMonitor" not in {kind for kind, _ in standalone}


def test_service_monitor_scrapes_the_metrics_port_when_enabled(helm: str) -> None:
    manifests = render(
        helm, serviceMonitor={"enabled": True, "labels": {"release": "kps"}}
    )
    monitor = manifests["ServiceMonitor", "demo-statehub"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ns"]}
    service_labels = manifests["Service", "demo-statehub"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


def test_metrics_off_passes_an_empty_listen_and_drops_the_port(helm: str) -> None:
    manifests = render(helm, metrics={"enabled": False})
    assert flag(manifests, "metrics_listen") == ""
    assert flag(manifests, "metrics_max_lock_names") is None
    assert [p["name"] for p in container(manifests)["ports"]] == ["grpc"]
    service = manifests["Service", "demo-statehub"]["spec"]
    assert [p["name"] for p in service["ports"]] == ["grpc"]
    assert "needs metrics.enabled" in render_error(
        helm, metrics={"enabled": False}, serviceMonitor={"enabled": True}
    )


# --- Sidecar -------------------------------------------------------------


def test_sidecar_renders_the_example_deployment_and_the_token(
    sidecar: Manifests,
) -> None:
    assert set(sidecar) == {
        ("Deployment", "demo-statehub"),
        ("Secret", "demo-statehub-token"),
    }


def test_sidecar_pod_runs_statehub_beside_the_app(sidecar: Manifests) -> None:
    names = [c["name"] for c in pod(sidecar)["spec"]["containers"]]
    assert sorted(names) == ["app", "statehub"]
    annotations = pod(sidecar)["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "app"


def test_sidecar_containers_share_the_socket_emptydir(sidecar: Manifests) -> None:
    volumes = {v["name"]: v for v in pod(sidecar)["spec"]["volumes"]}
    assert volumes["socket"] == {"name": "socket", "emptyDir": {}}
    for name in ("app", "statehub"):
        mounts = container(sidecar, name)["volumeMounts"]
        assert {"name": "socket", "mountPath": SOCKET_DIR} in mounts


def test_sidecar_app_gets_the_socket_address(sidecar: Manifests) -> None:
    env = container(sidecar, "app")["env"]
    assert {"name": "STATEHUB_ADDRESS", "value": SOCKET} in env


def test_sidecar_statehub_listens_only_on_the_socket(sidecar: Manifests) -> None:
    assert flag(sidecar, "listen") == SOCKET
    assert flag(sidecar, "metrics_listen") == "0.0.0.0:9420"
    statehub = container(sidecar)
    assert [(p["name"], p["containerPort"]) for p in statehub["ports"]] == [
        ("metrics", 9420)
    ]
    # The kubelet probes over the pod network, where statehub has no gRPC port.
    assert "livenessProbe" not in statehub
    assert "readinessProbe" not in statehub


def test_sidecar_app_and_statehub_run_as_one_user(sidecar: Manifests) -> None:
    # Connecting to the socket needs write permission on it, and the server
    # creates it 0600: the app must be the same user.
    assert pod(sidecar)["spec"]["securityContext"]["runAsUser"] == 65532
    for name in ("app", "statehub"):
        assert "runAsUser" not in container(sidecar, name)["securityContext"]


def test_sidecar_app_is_configurable(helm: str) -> None:
    app = {
        "name": "web",
        "image": "registry.example/web:1",
        "command": [],
        "args": ["--serve"],
        "env": [{"name": "MODE", "value": "prod"}],
    }
    manifests = render(
        helm, mode="sidecar", sidecar={"addressEnv": "SH_ADDR", "app": app}
    )
    web = container(manifests, "web")
    assert web["image"] == "registry.example/web:1"
    assert "command" not in web
    assert web["args"] == ["--serve"]
    assert web["env"] == [
        {"name": "SH_ADDR", "value": SOCKET},
        TOKEN_ENV,
        {"name": "MODE", "value": "prod"},
    ]


def test_sidecar_refuses_a_service_monitor(helm: str) -> None:
    assert "serviceMonitor needs mode=standalone" in render_error(
        helm, mode="sidecar", serviceMonitor={"enabled": True}
    )


# --- Security --------------------------------------------------------------


def volume(manifests: Manifests, name: str) -> dict[str, Any]:
    (found,) = [v for v in pod(manifests)["spec"]["volumes"] if v["name"] == name]
    return found


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_a_random_token_is_created_mounted_and_required(helm: str, mode: str) -> None:
    manifests = render(helm, mode=mode)
    secret = manifests["Secret", "demo-statehub-token"]
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
    assert (
        token
        != base64.b64decode(
            render(helm, mode=mode)["Secret", "demo-statehub-token"]["data"]["token"]
        ).decode()
    ), "a fresh install gets a fresh token"
    assert flag(manifests, "auth_token_file") == "/etc/statehub/auth/token"
    assert volume(manifests, "auth")["secret"] == {
        "secretName": "demo-statehub-token",
        "defaultMode": 0o440,  # root and the pod's fsGroup, read only
        "items": [{"key": "token", "path": "token"}],
    }
    assert {
        "name": "auth",
        "mountPath": "/etc/statehub/auth",
        "readOnly": True,
    } in container(manifests)["volumeMounts"]


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_an_existing_token_secret_is_used_instead(helm: str, mode: str) -> None:
    manifests = render(
        helm,
        mode=mode,
        auth={"token": {"existingSecret": "mine", "secretKey": "t"}},
    )
    assert "Secret" not in {kind for kind, _ in manifests}
    assert flag(manifests, "auth_token_file") == "/etc/statehub/auth/t"
    assert volume(manifests, "auth")["secret"] == {
        "secretName": "mine",
        "defaultMode": 0o440,
        "items": [{"key": "t", "path": "t"}],
    }
    if mode == "sidecar":
        env = container(manifests, "app")["env"]
        assert {
            "name": "STATEHUB_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "mine", "key": "t"}},
        } in env


def test_the_sidecar_app_gets_the_token(sidecar: Manifests) -> None:
    assert TOKEN_ENV in container(sidecar, "app")["env"]
    # The app needs only the variable, not the mounted file.
    app_mounts = container(sidecar, "app")["volumeMounts"]
    assert [m["name"] for m in app_mounts] == ["socket"]


def test_the_token_can_be_turned_off_in_sidecar_mode(helm: str) -> None:
    manifests = render(helm, mode="sidecar", auth={"token": {"enabled": False}})
    assert "Secret" not in {kind for kind, _ in manifests}
    assert flag(manifests, "auth_token_file") is None
    assert [v["name"] for v in pod(manifests)["spec"]["volumes"]] == [
        "socket",
        "data",
    ]
    assert [m["name"] for m in container(manifests)["volumeMounts"]] == [
        "socket",
        "data",
    ]
    env = container(manifests, "app")["env"]
    assert "STATEHUB_TOKEN" not in {e["name"] for e in env}
    # The socket is the only listener: no need to allow anything.
    assert "--allow_insecure_non_loopback" not in args(manifests)


def test_standalone_without_token_or_tls_is_refused_unless_allowed(
    helm: str,
) -> None:
    no_token = {"token": {"enabled": False}}
    error = render_error(helm, auth=no_token)
    assert "statehub-server refuses to start there without a token or TLS" in error
    assert "allowInsecureNonLoopback=true" in error  # and says how to fix it
    allowed = render(helm, auth=no_token, allowInsecureNonLoopback=True)
    assert "--allow_insecure_non_loopback" in args(allowed)
    assert flag(allowed, "auth_token_file") is None
    assert ("Secret", "demo-statehub-token") not in allowed
    # Off by default, and not needed with TLS alone.
    assert "--allow_insecure_non_loopback" not in args(render(helm))
    tls_only = render(
        helm, auth=no_token, tls={"enabled": True, "existingSecret": "statehub-tls"}
    )
    assert "--allow_insecure_non_loopback" not in args(tls_only)
    assert flag(tls_only, "tls_cert") == "/etc/statehub/tls/tls.crt"
    # The sidecar listens on its socket only: nothing to refuse.
    render(helm, mode="sidecar", auth=no_token)


def test_tls_mounts_its_secret_and_probes_over_tcp(helm: str) -> None:
    manifests = render(helm, tls={"enabled": True, "existingSecret": "statehub-tls"})
    assert flag(manifests, "tls_cert") == "/etc/statehub/tls/tls.crt"
    assert flag(manifests, "tls_key") == "/etc/statehub/tls/tls.key"
    assert flag(manifests, "tls_client_ca") is None
    assert volume(manifests, "tls")["secret"] == {
        "secretName": "statehub-tls",
        "defaultMode": 0o440,
    }
    assert {
        "name": "tls",
        "mountPath": "/etc/statehub/tls",
        "readOnly": True,
    } in container(manifests)["volumeMounts"]
    statehub = container(manifests)
    for probe in ("livenessProbe", "readinessProbe"):
        # Kubernetes' gRPC probe cannot speak TLS.
        assert statehub[probe]["tcpSocket"] == {"port": "grpc"}, probe
        assert "grpc" not in statehub[probe]
    mutual = render(
        helm, tls={"enabled": True, "existingSecret": "statehub-tls", "clientCA": True}
    )
    assert flag(mutual, "tls_client_ca") == "/etc/statehub/tls/ca.crt"
    assert volume(mutual, "tls") == volume(manifests, "tls")  # ca.crt is in it


def test_the_service_claims_cleartext_http2_only_without_tls(
    helm: str, standalone: Manifests
) -> None:
    def grpc_port(manifests: Manifests) -> dict[str, Any]:
        (port,) = [
            p
            for p in manifests["Service", "demo-statehub"]["spec"]["ports"]
            if p["name"] == "grpc"
        ]
        return port

    assert grpc_port(standalone)["appProtocol"] == "kubernetes.io/h2c"
    tls = render(helm, tls={"enabled": True, "existingSecret": "statehub-tls"})
    assert "appProtocol" not in grpc_port(tls)


def test_tls_needs_its_secret(helm: str) -> None:
    assert "tls.enabled needs tls.existingSecret" in render_error(
        helm, tls={"enabled": True}
    )
    assert "tls.clientCA needs tls.enabled" in render_error(
        helm, tls={"clientCA": True}
    )


def test_group_access_and_session_limits_become_flags(helm: str) -> None:
    manifests = render(
        helm,
        socket={"groupAccess": True},
        limits={"maxSessions": 500, "maxWaitersPerSession": 64},
    )
    assert "--unix_socket_group_access" in args(manifests)
    assert flag(manifests, "max_sessions") == "500"
    assert flag(manifests, "max_waiters_per_session") == "64"


# --- Durability: the data dir ---------------------------------------------


def data_volume(manifests: Manifests) -> dict[str, Any] | None:
    found = [v for v in pod(manifests)["spec"]["volumes"] if v["name"] == "data"]
    return found[0] if found else None


def data_mounts(manifests: Manifests, name: str = "statehub") -> list[str]:
    return [
        m["mountPath"]
        for m in container(manifests, name)["volumeMounts"]
        if m["name"] == "data"
    ]


def test_standalone_keeps_its_data_dir_on_a_persistent_volume_claim(
    standalone: Manifests,
) -> None:
    claim = standalone["PersistentVolumeClaim", "demo-statehub-data"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    assert "annotations" not in claim["metadata"]
    assert claim["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
    assert data_volume(standalone) == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "demo-statehub-data"},
    }
    assert data_mounts(standalone) == [DATA_DIR]
    assert flag(standalone, "data_dir") == DATA_DIR
    assert flag(standalone, "fsync") == "everysec"
    # Two pods never share the ReadWriteOnce data dir: no rolling update.
    deployment = standalone["Deployment", "demo-statehub"]["spec"]
    assert deployment["strategy"] == {"type": "Recreate"}
    # The non-root server can write the volume through the pod's group.
    assert pod(standalone)["spec"]["securityContext"]["fsGroup"] == 65532


def test_persistence_values_shape_the_claim(helm: str) -> None:
    manifests = render(
        helm,
        persistence={
            "size": "20Gi",
            "storageClass": "fast-ssd",
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        durability={"fsync": "always"},
    )
    claim = manifests["PersistentVolumeClaim", "demo-statehub-data"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert flag(manifests, "fsync") == "always"
    # "-" asks for no StorageClass at all (a pre-made volume).
    static = render(helm, persistence={"storageClass": "-"})
    claim = static["PersistentVolumeClaim", "demo-statehub-data"]
    assert claim["spec"]["storageClassName"] == ""


def test_an_existing_claim_is_used_instead(helm: str) -> None:
    manifests = render(helm, persistence={"existingClaim": "statehub-keep"})
    assert "PersistentVolumeClaim" not in {kind for kind, _ in manifests}
    assert data_volume(manifests) == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "statehub-keep"},
    }
    assert data_mounts(manifests) == [DATA_DIR]


def test_standalone_without_persistence_keeps_the_data_dir_on_an_emptydir(
    helm: str,
) -> None:
    manifests = render(helm, persistence={"enabled": False})
    assert "PersistentVolumeClaim" not in {kind for kind, _ in manifests}
    assert data_volume(manifests) == {"name": "data", "emptyDir": {}}
    assert data_mounts(manifests) == [DATA_DIR]
    assert flag(manifests, "data_dir") == DATA_DIR


def test_sidecar_keeps_the_data_dir_on_an_emptydir(sidecar: Manifests) -> None:
    # persistence.enabled is true by default, and ignored in sidecar mode.
    assert "PersistentVolumeClaim" not in {kind for kind, _ in sidecar}
    assert data_volume(sidecar) == {"name": "data", "emptyDir": {}}
    assert data_mounts(sidecar) == [DATA_DIR]
    assert data_mounts(sidecar, "app") == []  # only statehub writes it
    assert flag(sidecar, "data_dir") == DATA_DIR
    assert flag(sidecar, "fsync") == "everysec"


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_durability_off_passes_no_data_dir_and_mounts_nothing(
    helm: str, mode: str
) -> None:
    manifests = render(helm, mode=mode, durability={"enabled": False})
    assert "PersistentVolumeClaim" not in {kind for kind, _ in manifests}
    assert data_volume(manifests) is None
    assert data_mounts(manifests) == []
    assert flag(manifests, "data_dir") is None
    assert flag(manifests, "fsync") is None


def test_an_unknown_fsync_policy_is_refused(helm: str) -> None:
    error = render_error(helm, durability={"fsync": "sometimes"})
    assert "durability.fsync must be always, everysec or no" in error


@pytest.mark.parametrize(
    "values",
    [
        {"persistence": {"enabled": False}},
        {"persistence": {"existingClaim": "mine", "storageClass": "-"}},
        {"durability": {"enabled": False}},
        {"mode": "sidecar", "durability": {"fsync": "always"}},
    ],
    ids=["no-persistence", "existing-claim", "no-durability", "sidecar-always"],
)
def test_helm_lint_passes_strict_with_durability_values(
    helm: str, values: dict[str, Any]
) -> None:
    result = _run(helm, "lint", values)
    assert result.returncode == 0, result.stdout + result.stderr


# --- NOTES.txt ---------------------------------------------------------------


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart that renders NOTES.txt into a ConfigMap: `helm
    template` leaves the notes out, and `helm install --dry-run` needs a
    cluster. `tpl` runs the same text with the same values and helpers."""
    chart = tmp_path_factory.mktemp("notes") / "statehub"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata: {name: notes}\n"
        'data: {notes: {{ tpl (.Files.Get "notes.txt") . | quote }}}\n'
    )
    return chart


def notes(helm: str, chart: Path, **values: Any) -> str:
    result = subprocess.run(
        [helm, "template", "demo", str(chart), "--namespace", "ns", "--values", "-"]
        + ["--show-only", "templates/zz-notes.yaml"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["data"]["notes"]


def test_notes_tell_how_to_get_and_send_the_token(helm: str, notes_chart: Path) -> None:
    text = notes(helm, notes_chart)
    assert (
        "export STATEHUB_TOKEN=$(kubectl -n ns get secret demo-statehub-token"
        " -o jsonpath='{.data.token}' | base64 -d)"
    ) in text
    assert '-H "authorization: Bearer $STATEHUB_TOKEN"' in text
    assert "token=" in text
    assert "grpcurl -plaintext 127.0.0.1:7420 grpc.health.v1.Health/Check" in text
    own = notes(
        helm, notes_chart, auth={"token": {"existingSecret": "mine", "secretKey": "t"}}
    )
    assert "get secret mine -o jsonpath='{.data.t}'" in own
    off = notes(
        helm,
        notes_chart,
        auth={"token": {"enabled": False}},
        allowInsecureNonLoopback=True,
    )
    assert "STATEHUB_TOKEN" not in off
    assert "allowInsecureNonLoopback is on" in off


def test_notes_connect_with_tls(helm: str, notes_chart: Path) -> None:
    text = notes(
        helm,
        notes_chart,
        tls={"enabled": True, "existingSecret": "statehub-tls", "clientCA": True},
    )
    assert "-plaintext" not in text
    assert "get secret statehub-tls -o jsonpath='{.data.ca\\.crt}'" in text
    assert (
        "grpcurl -cacert ca.crt -cert client.crt -key client.key"
        " -authority demo-statehub.ns.svc.cluster.local"
    ) in text
    assert 'tls_ca="ca.crt", tls_cert="client.crt", tls_key="client.key"' in text


def test_notes_in_sidecar_mode_name_the_variables(helm: str, notes_chart: Path) -> None:
    text = notes(helm, notes_chart, mode="sidecar")
    assert "$STATEHUB_ADDRESS" in text
    assert "$STATEHUB_TOKEN" in text


def test_notes_say_where_the_state_is_kept(helm: str, notes_chart: Path) -> None:
    inspect = (
        "kubectl -n ns exec deploy/demo-statehub -c statehub -- "
        "statehub-cli inspect --data_dir=/var/lib/statehub"
    )
    text = notes(helm, notes_chart)
    assert "PersistentVolumeClaim demo-statehub-data" in text
    assert "`helm uninstall` deletes the claim" in text
    assert inspect in text
    own = notes(helm, notes_chart, persistence={"existingClaim": "mine"})
    assert "PersistentVolumeClaim mine" in own
    assert "helm uninstall" not in own
    ephemeral = notes(helm, notes_chart, persistence={"enabled": False})
    assert "on an emptyDir" in ephemeral
    assert "not of the pod" in ephemeral
    off = notes(helm, notes_chart, durability={"enabled": False})
    assert "Durability is off" in off
    assert "inspect" not in off
    sidecar = notes(helm, notes_chart, mode="sidecar")
    assert "a restarted statehub container comes back with it" in sidecar
    assert inspect in sidecar
