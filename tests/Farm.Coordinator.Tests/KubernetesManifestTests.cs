using System.Globalization;
using System.Text.RegularExpressions;
using Farm.Coordinator.Hosting;
using Farm.Testing;
using Farm.Worker;
using Farm.Worker.Hosting;
using YamlDotNet.RepresentationModel;

namespace Farm.Coordinator.Tests;

/// <summary>
/// infra/k8s as <c>kubectl apply -k</c> would meet it, checked without a cluster: every manifest parses and names
/// itself, kustomization.yaml lists them, Services, budgets and the ScaledObject find what they point at, and the
/// ports, probes, environment variables and grace periods are the ones the coordinator and worker processes serve and
/// read (their constants and Options defaults, docs/configuration.md).
/// </summary>
public sealed partial class KubernetesManifestTests
{
    private static readonly string Directory = Path.Combine(RepoPaths.RepoRoot, "infra", "k8s");

    /// <summary>The image names kustomization.yaml rewrites; a container's image says which process it runs.</summary>
    private const string CoordinatorImage = "farm-coordinator";
    private const string WorkerImage = "farm-worker";

    [Fact]
    public void Every_manifest_parses_and_names_its_api_version_kind_and_name()
    {
        var documents = Manifests();
        Assert.NotEmpty(documents);
        Assert.All(documents, d =>
        {
            Assert.False(string.IsNullOrEmpty(Text(d.Root, "apiVersion")), $"{d.File}: a document without apiVersion");
            Assert.False(string.IsNullOrEmpty(d.Kind), $"{d.File}: a document without kind");
            Assert.False(string.IsNullOrEmpty(d.Name), $"{d.File}: a {d.Kind} without metadata.name");
        });
        var duplicates = documents.GroupBy(d => (d.Kind, d.Name)).Where(g => g.Count() > 1).Select(g => $"{g.Key.Kind}/{g.Key.Name}");
        Assert.Empty(duplicates);
        Assert.Equal(
            ["ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "ScaledObject", "Service", "TriggerAuthentication"],
            documents.Select(d => d.Kind).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Kustomization_lists_exactly_the_manifests_of_the_directory_and_the_images_the_containers_run()
    {
        var kustomization = Load(Path.Combine(Directory, "kustomization.yaml")).Single();
        Assert.Equal("Kustomization", Text(kustomization, "kind"));
        var listed = Items(kustomization, "resources").Select(r => ((YamlScalarNode)r).Value!).ToList();
        Assert.Equal(listed.Count, listed.Distinct(StringComparer.Ordinal).Count());
        var files = System.IO.Directory.GetFiles(Directory, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml");
        Assert.Equal(files.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));

        var images = Items(kustomization, "images").Select(i => Text(i, "name")).Order(StringComparer.Ordinal);
        var used = Deployments().SelectMany(d => Containers(d)).Select(c => Text(c, "image")).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(images, used);
        Assert.Equal([CoordinatorImage, WorkerImage], used);
        // Everything lands in the namespace the manifests create.
        Assert.Equal(Manifests().Single(d => d.Kind == "Namespace").Name, Text(kustomization, "namespace"));
    }

    [Fact]
    public void Services_and_disruption_budgets_select_the_pods_of_a_deployment_and_name_ports_they_have()
    {
        foreach (var deployment in Deployments())
        {
            Assert.True(Contains(Labels(deployment, "spec", "template", "metadata", "labels"), Labels(deployment, "spec", "selector", "matchLabels")),
                $"Deployment {Name(deployment)}: its selector does not match its own pods");
        }

        foreach (var service in Manifests().Where(d => d.Kind == "Service"))
        {
            var selector = Labels(service.Root, "spec", "selector");
            Assert.NotEmpty(selector);
            var target = Assert.Single(Deployments(), d => Contains(Labels(d, "spec", "template", "metadata", "labels"), selector));
            var ports = Containers(target).SelectMany(c => Items(c, "ports")).ToList();
            foreach (var port in Items(service.Root, "spec", "ports"))
            {
                var targetPort = Text(port, "targetPort") ?? Text(port, "port");
                Assert.True(ports.Any(p => Text(p, "name") == targetPort || Text(p, "containerPort") == targetPort),
                    $"Service {service.Name}: targetPort {targetPort} is no container port of Deployment {Name(target)}");
            }
        }

        var budgets = Manifests().Where(d => d.Kind == "PodDisruptionBudget").ToList();
        Assert.NotEmpty(budgets);
        foreach (var budget in budgets)
        {
            var selector = Labels(budget.Root, "spec", "selector", "matchLabels");
            Assert.NotEmpty(selector);
            Assert.Single(Deployments(), d => Contains(Labels(d, "spec", "template", "metadata", "labels"), selector));
        }

        // Coordinators keep one pod through a node drain: the one that takes over the others' builds.
        var coordinatorLabels = Labels(Deployment(CoordinatorImage), "spec", "template", "metadata", "labels");
        Assert.Contains(budgets, b => Contains(coordinatorLabels, Labels(b.Root, "spec", "selector", "matchLabels")) && Text(b.Root, "spec", "minAvailable") == "1");
    }

    [Fact]
    public void The_coordinators_ports_and_probes_are_the_ones_it_serves()
    {
        var defaults = new CoordinatorOptions();
        var container = Assert.Single(Containers(Deployment(CoordinatorImage)));
        var env = Env(container);
        var httpPort = Port(env, "Farm__Coordinator__HttpPort", defaults.HttpPort);
        // A kubelet and the Service reach the pod's address, not its loopback.
        Assert.Equal("0.0.0.0", Setting(env, "Farm__Coordinator__HttpAddress", defaults.HttpAddress));
        Assert.Equal(httpPort, ContainerPort(container, "http"));
        Assert.Equal(Port(env, "Farm__Coordinator__SiloPort", defaults.SiloPort), ContainerPort(container, "silo"));
        Assert.Equal(Port(env, "Farm__Coordinator__GatewayPort", defaults.GatewayPort), ContainerPort(container, "gateway"));
        // A silo listening on every interface must advertise one address (FARM4260): the pod's.
        Assert.Equal("status.podIP", Text(Items(container, "env").Single(e => Text(e, "name") == "Farm__Coordinator__AdvertisedAddress"), "valueFrom", "fieldRef", "fieldPath"));

        Assert.Equal((CoordinatorProbes.LivenessPath, httpPort), Probe(container, "livenessProbe"));
        Assert.Equal((CoordinatorProbes.ReadinessPath, httpPort), Probe(container, "readinessProbe"));
        if (Node(container, "startupProbe") is not null)
        {
            Assert.Equal((CoordinatorProbes.LivenessPath, httpPort), Probe(container, "startupProbe"));
        }
    }

    [Fact]
    public void The_workers_probes_are_the_ones_it_serves_and_its_grace_period_outlasts_its_drain()
    {
        var defaults = new WorkerOptions();
        var deployment = Deployment(WorkerImage);
        var container = Assert.Single(Containers(deployment));
        var env = Env(container);
        // The worker serves no probe unless told a port (default 0), and only on loopback unless told otherwise.
        Assert.Equal(0, defaults.HealthPort);
        var healthPort = Port(env, "Farm__Worker__HealthPort", defaults.HealthPort);
        Assert.NotEqual(0, healthPort);
        Assert.Contains(Setting(env, "Farm__Worker__HealthAddress", defaults.HealthAddress), new[] { "+", "*", "0.0.0.0" });
        Assert.Equal(healthPort, ContainerPort(container, "health"));
        Assert.Equal((WorkerHealthEndpoint.LivenessPath, healthPort), Probe(container, "livenessProbe"));
        Assert.Equal((WorkerHealthEndpoint.ReadinessPath, healthPort), Probe(container, "readinessProbe"));
        Assert.Equal(Port(env, "Farm__Worker__MetricsPort", defaults.MetricsPort), ContainerPort(container, "metrics"));
        Assert.Equal("true", Text(container, "securityContext", "privileged"));

        var stopGrace = TimeSpan.Parse(Setting(env, "Farm__Worker__StopGrace", defaults.StopGrace.ToString()), CultureInfo.InvariantCulture);
        var grace = TimeSpan.FromSeconds(int.Parse(Text(deployment, "spec", "template", "spec", "terminationGracePeriodSeconds") ?? "30", CultureInfo.InvariantCulture));
        // StopGrace for the jobs to finish, then time to kill their steps, hand them back and exit before SIGKILL.
        Assert.True(grace >= stopGrace + TimeSpan.FromSeconds(20), $"terminationGracePeriodSeconds {grace.TotalSeconds} s leaves no margin after StopGrace {stopGrace}");
        // A StopGrace beyond the process's own shutdown timeout would be cut short by it.
        Assert.True(stopGrace < WorkerHosting.ShutdownTimeout, $"StopGrace {stopGrace} is not below the worker's shutdown timeout {WorkerHosting.ShutdownTimeout}");
    }

    [Fact]
    public void Environment_variables_are_configuration_keys_and_their_sources_exist()
    {
        var keys = DocumentedKeys();
        var configMaps = Manifests().Where(d => d.Kind == "ConfigMap").ToList();
        var names = Deployments().SelectMany(Containers).SelectMany(c => Items(c, "env")).Select(e => Text(e, "name")!)
            .Concat(configMaps.SelectMany(m => Node(m.Root, "data") is YamlMappingNode data ? data.Children.Keys.Select(k => ((YamlScalarNode)k).Value!) : []))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        Assert.NotEmpty(names);
        Assert.All(names, name => Assert.True(keys.Any(k => k.IsMatch(name)), $"{name} is no configuration key docs/configuration.md lists"));

        var readme = File.ReadAllText(Path.Combine(RepoPaths.RepoRoot, "README.md"));
        foreach (var container in Deployments().SelectMany(Containers))
        {
            foreach (var source in Items(container, "envFrom"))
            {
                var map = Text(source, "configMapRef", "name");
                Assert.Contains(configMaps, m => m.Name == map);
            }

            // The Secret is the operator's: the README must tell them to create every key a manifest reads.
            foreach (var secret in Items(container, "env").Select(e => Node(e, "valueFrom", "secretKeyRef")).OfType<YamlMappingNode>())
            {
                Assert.Matches($"create secret generic {Regex.Escape(Text(secret, "name")!)}[^`]*--from-(literal|file)={Regex.Escape(Text(secret, "key")!)}=", readme);
            }
        }

        foreach (var reference in Manifests().Where(d => d.Kind == "TriggerAuthentication").SelectMany(d => Items(d.Root, "spec", "secretTargetRef")))
        {
            Assert.Matches($"create secret generic {Regex.Escape(Text(reference, "name")!)}[^`]*--from-(literal|file)={Regex.Escape(Text(reference, "key")!)}=", readme);
        }
    }

    [Fact]
    public void KEDA_scales_the_worker_deployment_on_the_jobs_queue()
    {
        var scaled = Assert.Single(Manifests(), d => d.Kind == "ScaledObject");
        Assert.Equal(Name(Deployment(WorkerImage)), Text(scaled.Root, "spec", "scaleTargetRef", "name"));
        Assert.Equal("Deployment", Text(scaled.Root, "spec", "scaleTargetRef", "kind") ?? "Deployment");
        var trigger = Assert.Single(Items(scaled.Root, "spec", "triggers"));
        Assert.Equal("rabbitmq", Text(trigger, "type"));
        Assert.Equal(WorkerHosting.QueueName, Text(trigger, "metadata", "queueName"));
        Assert.Equal("QueueLength", Text(trigger, "metadata", "mode"));
        // Over AMQP KEDA counts only waiting jobs; the management API counts running ones too, so busy workers stay.
        Assert.Equal("http", Text(trigger, "metadata", "protocol"));
        var authentication = Text(trigger, "authenticationRef", "name");
        Assert.Contains(Manifests(), d => d.Kind == "TriggerAuthentication" && d.Name == authentication);
        Assert.True(int.Parse(Text(scaled.Root, "spec", "minReplicaCount")!, CultureInfo.InvariantCulture) >= 1, "no worker at all would leave a job waiting until KEDA's next poll");
    }

    private sealed record Manifest(string File, YamlMappingNode Root)
    {
        public string? Kind => Text(Root, "kind");

        public string? Name => Text(Root, "metadata", "name");
    }

    private static List<Manifest> Manifests() =>
        [.. System.IO.Directory.GetFiles(Directory, "*.yaml")
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .Order(StringComparer.Ordinal)
            .SelectMany(f => Load(f).Select(root => new Manifest(Path.GetFileName(f), root)))];

    private static List<YamlMappingNode> Load(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            stream.Load(reader);
        }

        Assert.NotEmpty(stream.Documents);
        return [.. stream.Documents.Select(d => Assert.IsType<YamlMappingNode>(d.RootNode))];
    }

    private static List<YamlMappingNode> Deployments() => [.. Manifests().Where(d => d.Kind == "Deployment").Select(d => d.Root)];

    /// <summary>The one Deployment whose containers run <paramref name="image"/>.</summary>
    private static YamlMappingNode Deployment(string image) => Assert.Single(Deployments(), d => Containers(d).Any(c => Text(c, "image") == image));

    private static IEnumerable<YamlNode> Containers(YamlNode deployment) => Items(deployment, "spec", "template", "spec", "containers");

    private static string? Name(YamlNode node) => Text(node, "metadata", "name");

    private static YamlNode? Node(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var child))
            {
                return null;
            }

            node = child;
        }

        return node;
    }

    private static string? Text(YamlNode node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;

    private static IEnumerable<YamlNode> Items(YamlNode node, params string[] path) => Node(node, path) as YamlSequenceNode ?? [];

    private static Dictionary<string, string> Labels(YamlNode node, params string[] path) =>
        Node(node, path) is YamlMappingNode map
            ? map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!, StringComparer.Ordinal)
            : [];

    private static bool Contains(Dictionary<string, string> labels, Dictionary<string, string> selector) =>
        selector.Count > 0 && selector.All(s => labels.TryGetValue(s.Key, out var value) && value == s.Value);

    /// <summary>A container's literal env values (not the ones from Secrets or the downward API).</summary>
    private static Dictionary<string, string> Env(YamlNode container) =>
        Items(container, "env").Where(e => Text(e, "value") is not null).ToDictionary(e => Text(e, "name")!, e => Text(e, "value")!, StringComparer.Ordinal);

    private static string Setting(Dictionary<string, string> env, string name, string fallback) => env.GetValueOrDefault(name, fallback);

    private static int Port(Dictionary<string, string> env, string name, int fallback) =>
        env.TryGetValue(name, out var value) ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

    private static int ContainerPort(YamlNode container, string name)
    {
        var port = Assert.Single(Items(container, "ports"), p => Text(p, "name") == name);
        return int.Parse(Text(port, "containerPort")!, CultureInfo.InvariantCulture);
    }

    /// <summary>An httpGet probe's path and its port as a number (a named port resolved among the container's).</summary>
    private static (string? Path, int Port) Probe(YamlNode container, string probe)
    {
        Assert.NotNull(Node(container, probe));
        var port = Text(container, probe, "httpGet", "port")!;
        return (Text(container, probe, "httpGet", "path"),
            int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : ContainerPort(container, port));
    }

    /// <summary>
    /// The environment forms of the keys docs/configuration.md lists for the coordinator and the worker: the table rows
    /// under each <c>### `Farm:Section`</c> heading (<c>Tokens:N</c> is any number), and the variables it names in
    /// backticks (FARM_RABBITMQ).
    /// </summary>
    private static List<Regex> DocumentedKeys()
    {
        var text = File.ReadAllText(Path.Combine(RepoPaths.RepoRoot, "docs", "configuration.md"));
        text = text[..text.IndexOf("## CLI", StringComparison.Ordinal)];
        var keys = new List<Regex>();
        string? section = null;
        foreach (var line in text.Split('\n'))
        {
            if (SectionHeading().Match(line) is { Success: true } heading)
            {
                section = heading.Groups[1].Value;
            }
            else if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                section = null;
            }
            else if (section is not null && line.StartsWith("| `", StringComparison.Ordinal))
            {
                var cell = line.Split('|')[1];
                foreach (Match key in Backticked().Matches(cell))
                {
                    var segments = $"{section}:{key.Groups[1].Value}".Split(':').Select(s => s == "N" ? "[0-9]+" : Regex.Escape(s));
                    var pattern = string.Join("__", segments);
                    keys.Add(new Regex($"^{pattern}$", RegexOptions.CultureInvariant));
                }
            }
        }

        foreach (Match variable in Variable().Matches(text))
        {
            keys.Add(new Regex($"^{Regex.Escape(variable.Groups[1].Value)}$", RegexOptions.CultureInvariant));
        }

        Assert.Contains(keys, k => k.IsMatch("Farm__Worker__StopGrace"));
        Assert.Contains(keys, k => k.IsMatch("Farm__Registries__Insecure__12"));
        Assert.DoesNotContain(keys, k => k.IsMatch("Farm__Worker__StopGraceSeconds"));
        return keys;
    }

    [GeneratedRegex(@"^###\s+`(Farm:[A-Za-z:]+)`")]
    private static partial Regex SectionHeading();

    [GeneratedRegex(@"`([A-Za-z][A-Za-z0-9:]*)`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"`([A-Z][A-Z0-9_]+)`")]
    private static partial Regex Variable();
}
