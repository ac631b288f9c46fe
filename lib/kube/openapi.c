/* SPDX-License-Identifier: Apache-2.0 */
/* OpenAPI v3 for the core group (/openapi/v3 and /openapi/v3/api/v1), as
 * much of kube-apiserver's document as kubectl reads: a PATCH operation per
 * kind with the fieldValidation parameter (so kubectl apply validates on
 * the server), and component schemas for the fields a user writes (for
 * kubectl explain). Not the whole API: GET/PUT/DELETE operations, status
 * types beyond the common fields and most volume sources are left out. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "wisp/kube_meta.h"

#define CORE "io.k8s.api.core.v1."
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define QUANTITY "io.k8s.apimachinery.pkg.api.resource.Quantity"
#define REF_PREFIX "#/components/schemas/"

/* A component schema. Objects unless type is set. */
struct schema_def {
    const char *name;
    const char *kind;     /* x-kubernetes-group-version-kind (core/v1), or NULL */
    const char *required; /* space-separated property names, or NULL */
    const char *type, *format; /* a scalar schema (Time, Quantity) */
    const char *desc;
};

/* A property of a component schema. type is "string", "boolean",
 * "int32", "int64", "map" (string to string), "qmap" (string to
 * Quantity), "[string" (list of strings), a schema name, or "[" + a schema
 * name (list of that). */
struct prop_def {
    const char *schema, *name, *type;
    const char *strategy, *merge_key; /* x-kubernetes-patch-strategy, -merge-key */
    const char *list_type;            /* x-kubernetes-list-type */
    const char *map_keys;             /* x-kubernetes-list-map-keys, space-separated */
    const char *desc;
};

static const struct schema_def schemas[] = {
    {CORE "Pod", "Pod", NULL, NULL, NULL,
     "Pod is a collection of containers that can run on a host. This resource is created by "
     "clients and scheduled onto hosts."},
    {CORE "PodSpec", NULL, "containers", NULL, NULL,
     "PodSpec is a description of a pod."},
    {CORE "PodStatus", NULL, NULL, NULL, NULL,
     "PodStatus represents information about the status of a pod. Status may trail the actual "
     "state of a system."},
    {CORE "PodCondition", NULL, "type status", NULL, NULL,
     "PodCondition contains details for the current condition of this pod."},
    {CORE "PodReadinessGate", NULL, "conditionType", NULL, NULL,
     "PodReadinessGate contains the reference to a pod condition"},
    {CORE "Container", NULL, "name", NULL, NULL,
     "A single application container that you want to run within a pod."},
    {CORE "ContainerPort", NULL, "containerPort", NULL, NULL,
     "ContainerPort represents a network port in a single container."},
    {CORE "EnvVar", NULL, "name", NULL, NULL,
     "EnvVar represents an environment variable present in a Container."},
    {CORE "EnvVarSource", NULL, NULL, NULL, NULL,
     "EnvVarSource represents a source for the value of an EnvVar."},
    {CORE "ObjectFieldSelector", NULL, "fieldPath", NULL, NULL,
     "ObjectFieldSelector selects an APIVersioned field of an object."},
    {CORE "ResourceRequirements", NULL, NULL, NULL, NULL,
     "ResourceRequirements describes the compute resource requirements."},
    {CORE "VolumeMount", NULL, "name mountPath", NULL, NULL,
     "VolumeMount describes a mounting of a Volume within a container."},
    {CORE "Volume", NULL, "name", NULL, NULL,
     "Volume represents a named volume in a pod that may be accessed by any container in the "
     "pod."},
    {CORE "EmptyDirVolumeSource", NULL, NULL, NULL, NULL,
     "Represents an empty directory for a pod."},
    {CORE "Toleration", NULL, NULL, NULL, NULL,
     "The pod this Toleration is attached to tolerates any taint that matches the triple "
     "<key,value,effect> using the matching operator <operator>."},
    {CORE "LocalObjectReference", NULL, NULL, NULL, NULL,
     "LocalObjectReference contains enough information to let you locate the referenced object "
     "inside the same namespace."},
    {CORE "ObjectReference", NULL, NULL, NULL, NULL,
     "ObjectReference contains enough information to let you inspect or modify the referred "
     "object."},
    {CORE "ServiceAccount", "ServiceAccount", NULL, NULL, NULL,
     "ServiceAccount binds together: * a name, understood by users, and perhaps by peripheral "
     "systems, for an identity * a principal that can be authenticated and authorized * a set "
     "of secrets"},
    {CORE "Namespace", "Namespace", NULL, NULL, NULL,
     "Namespace provides a scope for Names. Use of multiple namespaces is optional."},
    {CORE "NamespaceSpec", NULL, NULL, NULL, NULL,
     "NamespaceSpec describes the attributes on a Namespace."},
    {CORE "NamespaceStatus", NULL, NULL, NULL, NULL,
     "NamespaceStatus is information about the current status of a Namespace."},
    {CORE "Node", "Node", NULL, NULL, NULL,
     "Node is a worker node in Kubernetes. Each node will have a unique identifier in the cache "
     "(i.e. in etcd)."},
    {CORE "NodeSpec", NULL, NULL, NULL, NULL,
     "NodeSpec describes the attributes that a node is created with."},
    {CORE "Taint", NULL, "key effect", NULL, NULL,
     "The node this Taint is attached to has the \"effect\" on any pod that does not tolerate "
     "the Taint."},
    {META "ObjectMeta", NULL, NULL, NULL, NULL,
     "ObjectMeta is metadata that all persisted resources must have, which includes all objects "
     "users must create."},
    {META "OwnerReference", NULL, "apiVersion kind name uid", NULL, NULL,
     "OwnerReference contains enough information to let you identify an owning object."},
    {META "Time", NULL, NULL, "string", "date-time",
     "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON."},
    {QUANTITY, NULL, NULL, "string", NULL,
     "Quantity is a fixed-point representation of a number, such as \"500m\", \"10Mi\" or "
     "\"1.5Gi\"."},
};

#define API_VERSION_DESC                                                                       \
    "APIVersion defines the versioned schema of this representation of an object."
#define KIND_DESC "Kind is a string value representing the REST resource this object represents."
#define OBJ_META_DESC "Standard object's metadata."

static const struct prop_def props[] = {
    /* Pod */
    {CORE "Pod", "apiVersion", "string", NULL, NULL, NULL, NULL, API_VERSION_DESC},
    {CORE "Pod", "kind", "string", NULL, NULL, NULL, NULL, KIND_DESC},
    {CORE "Pod", "metadata", META "ObjectMeta", NULL, NULL, NULL, NULL, OBJ_META_DESC},
    {CORE "Pod", "spec", CORE "PodSpec", NULL, NULL, NULL, NULL,
     "Specification of the desired behavior of the pod."},
    {CORE "Pod", "status", CORE "PodStatus", NULL, NULL, NULL, NULL,
     "Most recently observed status of the pod. Populated by the system. Read-only."},
    /* PodSpec */
    {CORE "PodSpec", "activeDeadlineSeconds", "int64", NULL, NULL, NULL, NULL,
     "Optional duration in seconds the pod may be active on the node relative to StartTime "
     "before the system will actively try to mark it failed and kill associated containers."},
    {CORE "PodSpec", "automountServiceAccountToken", "boolean", NULL, NULL, NULL, NULL,
     "AutomountServiceAccountToken indicates whether a service account token should be "
     "automatically mounted."},
    {CORE "PodSpec", "containers", "[" CORE "Container", "merge", "name", "map", "name",
     "List of containers belonging to the pod. Containers cannot currently be added or removed. "
     "There must be at least one container in a Pod. Cannot be updated."},
    {CORE "PodSpec", "dnsPolicy", "string", NULL, NULL, NULL, NULL,
     "Set DNS policy for the pod. Defaults to \"ClusterFirst\"."},
    {CORE "PodSpec", "enableServiceLinks", "boolean", NULL, NULL, NULL, NULL,
     "EnableServiceLinks indicates whether information about services should be injected into "
     "pod's environment variables."},
    {CORE "PodSpec", "hostname", "string", NULL, NULL, NULL, NULL,
     "Specifies the hostname of the Pod. If not specified, the pod's hostname will be set to a "
     "system-defined value."},
    {CORE "PodSpec", "imagePullSecrets", "[" CORE "LocalObjectReference", "merge", "name", "map",
     "name",
     "ImagePullSecrets is an optional list of references to secrets in the same namespace to use "
     "for pulling any of the images used by this PodSpec."},
    {CORE "PodSpec", "initContainers", "[" CORE "Container", "merge", "name", "map", "name",
     "List of initialization containers belonging to the pod."},
    {CORE "PodSpec", "nodeName", "string", NULL, NULL, NULL, NULL,
     "NodeName indicates in which node this pod is scheduled."},
    {CORE "PodSpec", "nodeSelector", "map", NULL, NULL, "atomic", NULL,
     "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which "
     "must match a node's labels for the pod to be scheduled on that node."},
    {CORE "PodSpec", "priority", "int32", NULL, NULL, NULL, NULL,
     "The priority value. Various system components use this field to find the priority of the "
     "pod."},
    {CORE "PodSpec", "priorityClassName", "string", NULL, NULL, NULL, NULL,
     "If specified, indicates the pod's priority."},
    {CORE "PodSpec", "readinessGates", "[" CORE "PodReadinessGate", NULL, NULL, "atomic", NULL,
     "If specified, all readiness gates will be evaluated for pod readiness."},
    {CORE "PodSpec", "restartPolicy", "string", NULL, NULL, NULL, NULL,
     "Restart policy for all containers within the pod. One of Always, OnFailure, Never. "
     "Default to Always."},
    {CORE "PodSpec", "schedulerName", "string", NULL, NULL, NULL, NULL,
     "If specified, the pod will be dispatched by specified scheduler."},
    {CORE "PodSpec", "serviceAccount", "string", NULL, NULL, NULL, NULL,
     "DeprecatedServiceAccount is a deprecated alias for ServiceAccountName. Deprecated: Use "
     "serviceAccountName instead."},
    {CORE "PodSpec", "serviceAccountName", "string", NULL, NULL, NULL, NULL,
     "ServiceAccountName is the name of the ServiceAccount to use to run this pod."},
    {CORE "PodSpec", "subdomain", "string", NULL, NULL, NULL, NULL,
     "If specified, the fully qualified Pod hostname will be "
     "\"<hostname>.<subdomain>.<pod namespace>.svc.<cluster domain>\"."},
    {CORE "PodSpec", "terminationGracePeriodSeconds", "int64", NULL, NULL, NULL, NULL,
     "Optional duration in seconds the pod needs to terminate gracefully. Defaults to 30 "
     "seconds."},
    {CORE "PodSpec", "tolerations", "[" CORE "Toleration", NULL, NULL, "atomic", NULL,
     "If specified, the pod's tolerations."},
    {CORE "PodSpec", "volumes", "[" CORE "Volume", "merge,retainKeys", "name", "map", "name",
     "List of volumes that can be mounted by containers belonging to the pod."},
    /* PodStatus */
    {CORE "PodStatus", "conditions", "[" CORE "PodCondition", "merge", "type", "map", "type",
     "Current service state of pod."},
    {CORE "PodStatus", "hostIP", "string", NULL, NULL, NULL, NULL,
     "hostIP holds the IP address of the host to which the pod is assigned."},
    {CORE "PodStatus", "message", "string", NULL, NULL, NULL, NULL,
     "A human readable message indicating details about why the pod is in this condition."},
    {CORE "PodStatus", "nominatedNodeName", "string", NULL, NULL, NULL, NULL,
     "nominatedNodeName is set only when this pod preempts other pods on the node."},
    {CORE "PodStatus", "phase", "string", NULL, NULL, NULL, NULL,
     "The phase of a Pod is a simple, high-level summary of where the Pod is in its lifecycle. "
     "One of Pending, Running, Succeeded, Failed, Unknown."},
    {CORE "PodStatus", "podIP", "string", NULL, NULL, NULL, NULL,
     "podIP address allocated to the pod. Routable at least within the cluster."},
    {CORE "PodStatus", "reason", "string", NULL, NULL, NULL, NULL,
     "A brief CamelCase message indicating details about why the pod is in this state."},
    {CORE "PodStatus", "startTime", META "Time", NULL, NULL, NULL, NULL,
     "RFC 3339 date and time at which the object was acknowledged by the Kubelet."},
    /* PodCondition, PodReadinessGate */
    {CORE "PodCondition", "lastProbeTime", META "Time", NULL, NULL, NULL, NULL,
     "Last time we probed the condition."},
    {CORE "PodCondition", "lastTransitionTime", META "Time", NULL, NULL, NULL, NULL,
     "Last time the condition transitioned from one status to another."},
    {CORE "PodCondition", "message", "string", NULL, NULL, NULL, NULL,
     "Human-readable message indicating details about last transition."},
    {CORE "PodCondition", "reason", "string", NULL, NULL, NULL, NULL,
     "Unique, one-word, CamelCase reason for the condition's last transition."},
    {CORE "PodCondition", "status", "string", NULL, NULL, NULL, NULL,
     "Status is the status of the condition. Can be True, False, Unknown."},
    {CORE "PodCondition", "type", "string", NULL, NULL, NULL, NULL,
     "Type is the type of the condition."},
    {CORE "PodReadinessGate", "conditionType", "string", NULL, NULL, NULL, NULL,
     "ConditionType refers to a condition in the pod's condition list with matching type."},
    /* Container */
    {CORE "Container", "args", "[string", NULL, NULL, "atomic", NULL,
     "Arguments to the entrypoint. The container image's CMD is used if this is not provided."},
    {CORE "Container", "command", "[string", NULL, NULL, "atomic", NULL,
     "Entrypoint array. Not executed within a shell. The container image's ENTRYPOINT is used "
     "if this is not provided."},
    {CORE "Container", "env", "[" CORE "EnvVar", "merge", "name", "map", "name",
     "List of environment variables to set in the container. Cannot be updated."},
    {CORE "Container", "image", "string", NULL, NULL, NULL, NULL,
     "Container image name."},
    {CORE "Container", "imagePullPolicy", "string", NULL, NULL, NULL, NULL,
     "Image pull policy. One of Always, Never, IfNotPresent. Defaults to Always if :latest tag "
     "is specified, or IfNotPresent otherwise. Cannot be updated."},
    {CORE "Container", "name", "string", NULL, NULL, NULL, NULL,
     "Name of the container specified as a DNS_LABEL. Each container in a pod must have a "
     "unique name (DNS_LABEL). Cannot be updated."},
    {CORE "Container", "ports", "[" CORE "ContainerPort", "merge", "containerPort", "map",
     "containerPort protocol",
     "List of ports to expose from the container. Cannot be updated."},
    {CORE "Container", "resources", CORE "ResourceRequirements", NULL, NULL, NULL, NULL,
     "Compute Resources required by this container."},
    {CORE "Container", "stdin", "boolean", NULL, NULL, NULL, NULL,
     "Whether this container should allocate a buffer for stdin in the container runtime."},
    {CORE "Container", "terminationMessagePath", "string", NULL, NULL, NULL, NULL,
     "Optional: Path at which the file to which the container's termination message will be "
     "written is mounted into the container's filesystem."},
    {CORE "Container", "terminationMessagePolicy", "string", NULL, NULL, NULL, NULL,
     "Indicate how the termination message should be populated. File or "
     "FallbackToLogsOnError."},
    {CORE "Container", "tty", "boolean", NULL, NULL, NULL, NULL,
     "Whether this container should allocate a TTY for itself, also requires 'stdin' to be "
     "true."},
    {CORE "Container", "volumeMounts", "[" CORE "VolumeMount", "merge", "mountPath", "map",
     "mountPath", "Pod volumes to mount into the container's filesystem. Cannot be updated."},
    {CORE "Container", "workingDir", "string", NULL, NULL, NULL, NULL,
     "Container's working directory."},
    /* ContainerPort */
    {CORE "ContainerPort", "containerPort", "int32", NULL, NULL, NULL, NULL,
     "Number of port to expose on the pod's IP address."},
    {CORE "ContainerPort", "hostIP", "string", NULL, NULL, NULL, NULL,
     "What host IP to bind the external port to."},
    {CORE "ContainerPort", "hostPort", "int32", NULL, NULL, NULL, NULL,
     "Number of port to expose on the host."},
    {CORE "ContainerPort", "name", "string", NULL, NULL, NULL, NULL,
     "If specified, this must be an IANA_SVC_NAME and unique within the pod."},
    {CORE "ContainerPort", "protocol", "string", NULL, NULL, NULL, NULL,
     "Protocol for port. Must be UDP, TCP, or SCTP. Defaults to \"TCP\"."},
    /* EnvVar, EnvVarSource, ObjectFieldSelector */
    {CORE "EnvVar", "name", "string", NULL, NULL, NULL, NULL,
     "Name of the environment variable. Must be a C_IDENTIFIER."},
    {CORE "EnvVar", "value", "string", NULL, NULL, NULL, NULL,
     "Variable references $(VAR_NAME) are expanded using the previously defined environment "
     "variables in the container and any service environment variables."},
    {CORE "EnvVar", "valueFrom", CORE "EnvVarSource", NULL, NULL, NULL, NULL,
     "Source for the environment variable's value. Cannot be used if value is not empty."},
    {CORE "EnvVarSource", "fieldRef", CORE "ObjectFieldSelector", NULL, NULL, NULL, NULL,
     "Selects a field of the pod."},
    {CORE "ObjectFieldSelector", "apiVersion", "string", NULL, NULL, NULL, NULL,
     "Version of the schema the FieldPath is written in terms of, defaults to \"v1\"."},
    {CORE "ObjectFieldSelector", "fieldPath", "string", NULL, NULL, NULL, NULL,
     "Path of the field to select in the specified API version."},
    /* ResourceRequirements */
    {CORE "ResourceRequirements", "limits", "qmap", NULL, NULL, NULL, NULL,
     "Limits describes the maximum amount of compute resources allowed."},
    {CORE "ResourceRequirements", "requests", "qmap", NULL, NULL, NULL, NULL,
     "Requests describes the minimum amount of compute resources required."},
    /* VolumeMount, Volume, EmptyDirVolumeSource */
    {CORE "VolumeMount", "mountPath", "string", NULL, NULL, NULL, NULL,
     "Path within the container at which the volume should be mounted. Must not contain ':'."},
    {CORE "VolumeMount", "name", "string", NULL, NULL, NULL, NULL,
     "This must match the Name of a Volume."},
    {CORE "VolumeMount", "readOnly", "boolean", NULL, NULL, NULL, NULL,
     "Mounted read-only if true, read-write otherwise (false or unspecified). Defaults to "
     "false."},
    {CORE "VolumeMount", "subPath", "string", NULL, NULL, NULL, NULL,
     "Path within the volume from which the container's volume should be mounted."},
    {CORE "Volume", "emptyDir", CORE "EmptyDirVolumeSource", NULL, NULL, NULL, NULL,
     "emptyDir represents a temporary directory that shares a pod's lifetime."},
    {CORE "Volume", "name", "string", NULL, NULL, NULL, NULL,
     "name of the volume. Must be a DNS_LABEL and unique within the pod."},
    {CORE "EmptyDirVolumeSource", "medium", "string", NULL, NULL, NULL, NULL,
     "medium represents what type of storage medium should back this directory."},
    {CORE "EmptyDirVolumeSource", "sizeLimit", QUANTITY, NULL, NULL, NULL, NULL,
     "sizeLimit is the total amount of local storage required for this EmptyDir volume."},
    /* Toleration */
    {CORE "Toleration", "effect", "string", NULL, NULL, NULL, NULL,
     "Effect indicates the taint effect to match. Empty means match all taint effects."},
    {CORE "Toleration", "key", "string", NULL, NULL, NULL, NULL,
     "Key is the taint key that the toleration applies to. Empty means match all taint keys."},
    {CORE "Toleration", "operator", "string", NULL, NULL, NULL, NULL,
     "Operator represents a key's relationship to the value. Valid operators are Exists and "
     "Equal. Defaults to Equal."},
    {CORE "Toleration", "tolerationSeconds", "int64", NULL, NULL, NULL, NULL,
     "TolerationSeconds represents the period of time the toleration tolerates the taint."},
    {CORE "Toleration", "value", "string", NULL, NULL, NULL, NULL,
     "Value is the taint value the toleration matches to."},
    /* LocalObjectReference, ObjectReference */
    {CORE "LocalObjectReference", "name", "string", NULL, NULL, NULL, NULL,
     "Name of the referent."},
    {CORE "ObjectReference", "apiVersion", "string", NULL, NULL, NULL, NULL,
     "API version of the referent."},
    {CORE "ObjectReference", "fieldPath", "string", NULL, NULL, NULL, NULL,
     "If referring to a piece of an object instead of an entire object, this string should "
     "contain a valid JSON/Go field access statement."},
    {CORE "ObjectReference", "kind", "string", NULL, NULL, NULL, NULL,
     "Kind of the referent."},
    {CORE "ObjectReference", "name", "string", NULL, NULL, NULL, NULL,
     "Name of the referent."},
    {CORE "ObjectReference", "namespace", "string", NULL, NULL, NULL, NULL,
     "Namespace of the referent."},
    {CORE "ObjectReference", "resourceVersion", "string", NULL, NULL, NULL, NULL,
     "Specific resourceVersion to which this reference is made, if any."},
    {CORE "ObjectReference", "uid", "string", NULL, NULL, NULL, NULL,
     "UID of the referent."},
    /* ServiceAccount */
    {CORE "ServiceAccount", "apiVersion", "string", NULL, NULL, NULL, NULL, API_VERSION_DESC},
    {CORE "ServiceAccount", "automountServiceAccountToken", "boolean", NULL, NULL, NULL, NULL,
     "AutomountServiceAccountToken indicates whether pods running as this service account "
     "should have an API token automatically mounted."},
    {CORE "ServiceAccount", "imagePullSecrets", "[" CORE "LocalObjectReference", NULL, NULL,
     "atomic", NULL,
     "ImagePullSecrets is a list of references to secrets in the same namespace to use for "
     "pulling any images in pods that reference this ServiceAccount."},
    {CORE "ServiceAccount", "kind", "string", NULL, NULL, NULL, NULL, KIND_DESC},
    {CORE "ServiceAccount", "metadata", META "ObjectMeta", NULL, NULL, NULL, NULL,
     OBJ_META_DESC},
    {CORE "ServiceAccount", "secrets", "[" CORE "ObjectReference", "merge", "name", "map",
     "name",
     "Secrets is a list of the secrets in the same namespace that pods running using this "
     "ServiceAccount are allowed to use."},
    /* Namespace */
    {CORE "Namespace", "apiVersion", "string", NULL, NULL, NULL, NULL, API_VERSION_DESC},
    {CORE "Namespace", "kind", "string", NULL, NULL, NULL, NULL, KIND_DESC},
    {CORE "Namespace", "metadata", META "ObjectMeta", NULL, NULL, NULL, NULL, OBJ_META_DESC},
    {CORE "Namespace", "spec", CORE "NamespaceSpec", NULL, NULL, NULL, NULL,
     "Spec defines the behavior of the Namespace."},
    {CORE "Namespace", "status", CORE "NamespaceStatus", NULL, NULL, NULL, NULL,
     "Status describes the current status of a Namespace."},
    {CORE "NamespaceSpec", "finalizers", "[string", NULL, NULL, "atomic", NULL,
     "Finalizers is an opaque list of values that must be empty to permanently remove object "
     "from storage."},
    {CORE "NamespaceStatus", "phase", "string", NULL, NULL, NULL, NULL,
     "Phase is the current lifecycle phase of the namespace. One of Active, Terminating."},
    /* Node */
    {CORE "Node", "apiVersion", "string", NULL, NULL, NULL, NULL, API_VERSION_DESC},
    {CORE "Node", "kind", "string", NULL, NULL, NULL, NULL, KIND_DESC},
    {CORE "Node", "metadata", META "ObjectMeta", NULL, NULL, NULL, NULL, OBJ_META_DESC},
    {CORE "Node", "spec", CORE "NodeSpec", NULL, NULL, NULL, NULL,
     "Spec defines the behavior of a node."},
    {CORE "NodeSpec", "podCIDR", "string", NULL, NULL, NULL, NULL,
     "PodCIDR represents the pod IP range assigned to the node."},
    {CORE "NodeSpec", "podCIDRs", "[string", "merge", NULL, "set", NULL,
     "podCIDRs represents the IP ranges assigned to the node for usage by Pods on that node."},
    {CORE "NodeSpec", "providerID", "string", NULL, NULL, NULL, NULL,
     "ID of the node assigned by the cloud provider in the format: "
     "<ProviderName>://<ProviderSpecificNodeID>"},
    {CORE "NodeSpec", "taints", "[" CORE "Taint", NULL, NULL, "atomic", NULL,
     "If specified, the node's taints."},
    {CORE "NodeSpec", "unschedulable", "boolean", NULL, NULL, NULL, NULL,
     "Unschedulable controls node schedulability of new pods. By default, node is "
     "schedulable."},
    {CORE "Taint", "effect", "string", NULL, NULL, NULL, NULL,
     "Required. The effect of the taint on pods that do not tolerate the taint. Valid effects "
     "are NoSchedule, PreferNoSchedule and NoExecute."},
    {CORE "Taint", "key", "string", NULL, NULL, NULL, NULL,
     "Required. The taint key to be applied to a node."},
    {CORE "Taint", "value", "string", NULL, NULL, NULL, NULL,
     "The taint value corresponding to the taint key."},
    /* ObjectMeta, OwnerReference */
    {META "ObjectMeta", "annotations", "map", NULL, NULL, NULL, NULL,
     "Annotations is an unstructured key value map stored with a resource that may be set by "
     "external tools to store and retrieve arbitrary metadata."},
    {META "ObjectMeta", "creationTimestamp", META "Time", NULL, NULL, NULL, NULL,
     "CreationTimestamp is a timestamp representing the server time when this object was "
     "created. Populated by the system. Read-only."},
    {META "ObjectMeta", "deletionGracePeriodSeconds", "int64", NULL, NULL, NULL, NULL,
     "Number of seconds allowed for this object to gracefully terminate before it will be "
     "removed from the system. Only set when deletionTimestamp is also set."},
    {META "ObjectMeta", "deletionTimestamp", META "Time", NULL, NULL, NULL, NULL,
     "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. "
     "Populated by the system when a graceful deletion is requested. Read-only."},
    {META "ObjectMeta", "finalizers", "[string", "merge", NULL, "set", NULL,
     "Must be empty before the object is deleted from the registry."},
    {META "ObjectMeta", "generateName", "string", NULL, NULL, NULL, NULL,
     "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF "
     "the Name field has not been provided."},
    {META "ObjectMeta", "generation", "int64", NULL, NULL, NULL, NULL,
     "A sequence number representing a specific generation of the desired state. Populated by "
     "the system. Read-only."},
    {META "ObjectMeta", "labels", "map", NULL, NULL, NULL, NULL,
     "Map of string keys and values that can be used to organize and categorize (scope and "
     "select) objects."},
    {META "ObjectMeta", "name", "string", NULL, NULL, NULL, NULL,
     "Name must be unique within a namespace. Is required when creating resources, although "
     "some resources may allow a client to request the generation of an appropriate name "
     "automatically. Cannot be updated."},
    {META "ObjectMeta", "namespace", "string", NULL, NULL, NULL, NULL,
     "Namespace defines the space within which each name must be unique. Cannot be updated."},
    {META "ObjectMeta", "ownerReferences", "[" META "OwnerReference", "merge", "uid", "map",
     "uid", "List of objects depended by this object."},
    {META "ObjectMeta", "resourceVersion", "string", NULL, NULL, NULL, NULL,
     "An opaque value that represents the internal version of this object that can be used by "
     "clients to determine when objects have changed. Populated by the system. Read-only."},
    {META "ObjectMeta", "uid", "string", NULL, NULL, NULL, NULL,
     "UID is the unique in time and space value for this object. Populated by the system. "
     "Read-only."},
    {META "OwnerReference", "apiVersion", "string", NULL, NULL, NULL, NULL,
     "API version of the referent."},
    {META "OwnerReference", "blockOwnerDeletion", "boolean", NULL, NULL, NULL, NULL,
     "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot "
     "be deleted from the key-value store until this reference is removed."},
    {META "OwnerReference", "controller", "boolean", NULL, NULL, NULL, NULL,
     "If true, this reference points to the managing controller."},
    {META "OwnerReference", "kind", "string", NULL, NULL, NULL, NULL, "Kind of the referent."},
    {META "OwnerReference", "name", "string", NULL, NULL, NULL, NULL, "Name of the referent."},
    {META "OwnerReference", "uid", "string", NULL, NULL, NULL, NULL, "UID of the referent."},
};

/* The PATCH operations kubectl looks for, one per kind. */
struct patch_def {
    const char *path, *kind;
    int namespaced;
};
static const struct patch_def patches[] = {
    {"/api/v1/namespaces/{name}", "Namespace", 0},
    {"/api/v1/namespaces/{namespace}/pods/{name}", "Pod", 1},
    {"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", "ServiceAccount", 1},
    {"/api/v1/nodes/{name}", "Node", 0},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static json_t *ref_to(const char *schema)
{
    char ref[256];
    snprintf(ref, sizeof(ref), REF_PREFIX "%s", schema);
    return json_pack("{s:s}", "$ref", ref);
}

/* A property's type, as kube-apiserver writes it in v3: references to
 * structs through a one-element allOf with default {}. */
static json_t *type_schema(const char *type)
{
    if (!strcmp(type, "string"))
        return json_pack("{s:s, s:s}", "type", "string", "default", "");
    if (!strcmp(type, "boolean"))
        return json_pack("{s:s}", "type", "boolean");
    if (!strcmp(type, "int32") || !strcmp(type, "int64"))
        return json_pack("{s:s, s:s}", "type", "integer", "format", type);
    if (!strcmp(type, "map"))
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "object", "additionalProperties", "type",
                         "string", "default", "");
    if (!strcmp(type, "qmap"))
        return json_pack("{s:s, s:o}", "type", "object", "additionalProperties", ref_to(QUANTITY));
    if (type[0] == '[') {
        return json_pack("{s:s, s:o}", "type", "array", "items", type_schema(type + 1));
    }
    /* Scalars (Time, Quantity) are referenced bare; structs through allOf. */
    for (size_t i = 0; i < N_OF(schemas); i++) {
        if (!strcmp(schemas[i].name, type) && schemas[i].type)
            return json_pack("{s:[o]}", "allOf", ref_to(type));
    }
    return json_pack("{s:[o], s:{}}", "allOf", ref_to(type), "default");
}

static json_t *prop_schema(const struct prop_def *p)
{
    json_t *s = type_schema(p->type);
    json_object_set_new(s, "description", json_string(p->desc));
    if (p->list_type)
        json_object_set_new(s, !strcmp(p->type, "map") ? "x-kubernetes-map-type"
                                                        : "x-kubernetes-list-type",
                            json_string(p->list_type));
    if (p->map_keys)
        json_object_set_new(s, "x-kubernetes-list-map-keys", wisp__kube_words(p->map_keys));
    if (p->merge_key)
        json_object_set_new(s, "x-kubernetes-patch-merge-key", json_string(p->merge_key));
    if (p->strategy)
        json_object_set_new(s, "x-kubernetes-patch-strategy", json_string(p->strategy));
    return s;
}

static json_t *component_schemas(void)
{
    json_t *all = json_object();
    for (size_t i = 0; i < N_OF(schemas); i++) {
        const struct schema_def *d = &schemas[i];
        json_t *s = json_pack("{s:s}", "description", d->desc);
        if (d->type) {
            json_object_set_new(s, "type", json_string(d->type));
            if (d->format)
                json_object_set_new(s, "format", json_string(d->format));
            json_object_set_new(all, d->name, s);
            continue;
        }
        json_object_set_new(s, "type", json_string("object"));
        json_t *properties = json_object();
        for (size_t j = 0; j < N_OF(props); j++) {
            if (!strcmp(props[j].schema, d->name))
                json_object_set_new(properties, props[j].name, prop_schema(&props[j]));
        }
        json_object_set_new(s, "properties", properties);
        if (d->required)
            json_object_set_new(s, "required", wisp__kube_words(d->required));
        if (d->kind)
            json_object_set_new(s, "x-kubernetes-group-version-kind",
                                json_pack("[{s:s, s:s, s:s}]", "group", "", "kind", d->kind,
                                          "version", "v1"));
        json_object_set_new(all, d->name, s);
    }
    return all;
}

static json_t *param(const char *name, const char *in, int required, const char *desc)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:{s:s, s:b}}", "name", name, "in", in,
                          "description", desc, "schema", "type", "string", "uniqueItems", 1);
    if (required)
        json_object_set_new(p, "required", json_true());
    return p;
}

/* One path item with its PATCH operation. There is deliberately no
 * requestBody: kubectl apply computes a strategic merge patch from its
 * OpenAPI v3 schema only when the operation lists that content type, and a
 * partial schema would make it warn on every field left out here. Without
 * it kubectl uses the core/v1 types compiled into it, which are exact. */
static json_t *patch_path(const struct patch_def *d)
{
    char buf[256];
    json_t *params = json_array();
    snprintf(buf, sizeof(buf), "name of the %s", d->kind);
    json_array_append_new(params, param("name", "path", 1, buf));
    if (d->namespaced)
        json_array_append_new(params, param("namespace", "path", 1,
                                            "object name and auth scope, such as for teams and "
                                            "projects"));
    json_array_append_new(params, param("pretty", "query", 0,
                                        "If 'true', then the output is pretty printed."));

    json_t *op_params = json_array();
    json_array_append_new(op_params,
                          param("dryRun", "query", 0,
                                "When present, indicates that modifications should not be "
                                "persisted. Valid values are: All."));
    json_array_append_new(op_params,
                          param("fieldManager", "query", 0,
                                "fieldManager is a name associated with the actor or entity "
                                "that is making these changes."));
    json_array_append_new(
        op_params,
        param("fieldValidation", "query", 0,
              "fieldValidation instructs the server on how to handle objects in the request "
              "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: "
              "Ignore, Warn (the default), Strict (fail the request with a BadRequest error "
              "if any unknown fields would be dropped from the object, or if any duplicate "
              "fields are present)."));
    json_t *force = param("force", "query", 0,
                          "Force is going to \"force\" Apply requests. It means user will "
                          "re-acquire conflicting fields owned by other people.");
    json_object_set_new(json_object_get(force, "schema"), "type", json_string("boolean"));
    json_array_append_new(op_params, force);

    char schema[128], desc[128], op_id[128];
    snprintf(schema, sizeof(schema), CORE "%s", d->kind);
    snprintf(desc, sizeof(desc), "partially update the specified %s", d->kind);
    snprintf(op_id, sizeof(op_id), "patchCoreV1%s%s", d->namespaced ? "Namespaced" : "",
             d->kind);
    json_t *ok = json_pack("{s:s, s:{s:{s:o}}}", "description", "OK", "content",
                           "application/json", "schema", ref_to(schema));
    json_t *created = json_pack("{s:s, s:{s:{s:o}}}", "description", "Created", "content",
                                "application/json", "schema", ref_to(schema));
    json_t *op = json_pack(
        "{s:[s], s:s, s:s, s:o, s:{s:o, s:o, s:{s:s}}, s:s, s:{s:s, s:s, s:s}}", "tags",
        "core_v1", "description", desc, "operationId", op_id, "parameters", op_params,
        "responses", "200", ok, "201", created, "401", "description", "Unauthorized",
        "x-kubernetes-action", "patch", "x-kubernetes-group-version-kind", "group", "", "version",
        "v1", "kind", d->kind);
    return json_pack("{s:o, s:o}", "parameters", params, "patch", op);
}

json_t *wisp_kube_openapi_core(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; i < N_OF(patches); i++)
        json_object_set_new(paths, patches[i].path, patch_path(&patches[i]));
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "Kubernetes", "version", WISP_KUBE_GIT_VERSION, "paths", paths,
                     "components", "schemas", component_schemas());
}

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static char hash_hex[2 * EVP_MAX_MD_SIZE + 1];

/* Leaves hash_hex empty if memory runs out; the index then names the
 * document without a hash, which kubectl still follows. */
static void compute_hash(void)
{
    json_t *doc = wisp_kube_openapi_core();
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (text && EVP_Digest(text, strlen(text), md, &n, EVP_sha512(), NULL) == 1) {
        for (unsigned int i = 0; i < n; i++)
            snprintf(hash_hex + 2 * i, 3, "%02X", md[i]);
    }
    free(text);
    json_decref(doc);
}

const char *wisp_kube_openapi_hash(void)
{
    pthread_once(&hash_once, compute_hash);
    return hash_hex;
}

json_t *wisp_kube_openapi_index(void)
{
    char url[sizeof(hash_hex) + 64];
    snprintf(url, sizeof(url), "/openapi/v3/api/v1?hash=%s", wisp_kube_openapi_hash());
    return json_pack("{s:{s:{s:s}}}", "paths", "api/v1", "serverRelativeURL", url);
}
