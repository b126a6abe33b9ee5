using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Farm.Oci.Net;
using Farm.Testing;
using Xunit.Abstractions;

namespace Farm.Cli.Tests;

/// <summary>
/// infra/compose.yaml end to end, as README's "Run a farm with compose" tells a user: Farm builds its own images
/// (infra/images.sh: infra/Containerfile on the Debian base made offline from infra/install.sh's package tarball, pushed
/// to the loopback registry and pulled into podman), Debian's podman-compose runs them with three workers, and a build
/// sent to the published coordinator spreads its stages over more than one worker. How long each phase took goes to
/// the test's output (a measurement, not an assertion).
/// </summary>
public sealed class ComposeTests(ITestOutputHelper output)
{
    private const string Tarball = "/var/cache/farm/debian-bookworm.tgz";
    private static readonly string[] Targets = ["coordinator", "worker", "registry", "redis", "rabbitmq"];

    [Fact]
    public async Task Compose_runs_the_images_Farm_built_and_a_build_spreads_over_three_workers()
    {
        Assert.True(File.Exists(Tarball), $"{Tarball} is missing: run infra/install.sh (it saves the Debian packages of Farm's images).");
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        var id = Guid.NewGuid().ToString("N")[..12];
        var project = $"farm{id}";
        var directory = Directory.CreateTempSubdirectory("farm-compose-").FullName;
        // No credentials: an empty docker config of its own (podman refuses a DOCKER_CONFIG without config.json).
        Directory.CreateDirectory(Path.Combine(directory, "docker"));
        await File.WriteAllTextAsync(Path.Combine(directory, "docker", "config.json"), """{"auths":{}}""");
        var port = FreePorts.Tcp();
        var registryPort = FreePorts.Tcp();
        var images = $"{TestRegistries.Anonymous}/t{id}/farm";
        var env = new Dictionary<string, string>(FarmProcess.LocalFarmEnvironment())
        {
            ["FARM"] = CliProcess.CommandText,
            ["FARM_STATE_DIR"] = Path.Combine(directory, "state"),
            ["DOCKER_CONFIG"] = Path.Combine(directory, "docker"),
            ["FARM_HOST"] = string.Empty,
            ["FARM_IMAGES"] = images,
            ["FARM_TAG"] = "test",
            ["FARM_WORKERS"] = "3",
            ["FARM_PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["FARM_REGISTRY_PORT"] = registryPort.ToString(CultureInfo.InvariantCulture),
        };
        string[] compose = ["-p", project, "-f", Path.Combine(RepoPaths.RepoRoot, "infra", "compose.yaml")];
        var farmUrl = $"http://127.0.0.1:{port}";
        var published = $"127.0.0.1:{registryPort}";
        var phase = Stopwatch.StartNew();
        void Took(string what)
        {
            output.WriteLine($"{what}: {phase.Elapsed.TotalSeconds:0.0} s");
            phase.Restart();
        }

        try
        {
            await Tool.RunAsync(env, Path.Combine(RepoPaths.RepoRoot, "infra", "images.sh"));
            Took("infra/images.sh (base, publish, five builds, podman pull)");
            await Tool.RunAsync(env, "podman-compose", [.. compose, "up", "-d"]);

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            IReadOnlyList<string> workers = [];
            await Wait.UntilAsync(
                async () => (workers = await CoordinatorWorkers.NamesAsync(http, farmUrl)).Count == 3,
                TimeSpan.FromMinutes(3),
                () => $"three workers at {farmUrl}/api/workers, saw [{string.Join(", ", workers)}]" + Diagnostics(project));
            Took("compose up until three workers report");

            // The build's base, in the farm's registry through its published port; the farm pulls it as registry:5000.
            Ok(await FarmCli.RunAsync(env, null, "import", "-c", "CMD [\"sh\"]", BuildFixture.BusyboxRootfs(directory), $"{published}/base/busybox:1"));
            Ok(await FarmCli.RunAsync(env, null, "push", $"{published}/base/busybox:1"));
            var context = Directory.CreateDirectory(Path.Combine(directory, "context")).FullName;
            await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), """
                FROM registry:5000/base/busybox:1 AS a
                RUN echo a > /a && sleep 3
                FROM registry:5000/base/busybox:1 AS b
                RUN echo b > /b && sleep 3
                FROM registry:5000/base/busybox:1 AS c
                RUN echo c > /c && sleep 3
                FROM registry:5000/base/busybox:1 AS d
                RUN echo d > /d && sleep 3
                FROM registry:5000/base/busybox:1
                COPY --from=a /a /a
                COPY --from=b /b /b
                COPY --from=c /c /c
                COPY --from=d /d /d
                CMD ["cat", "/a", "/b", "/c", "/d"]
                """);
            var build = await CliProcess.RunAsync(env, TimeSpan.FromMinutes(5), null,
                ["build", "--farm", farmUrl, "--progress", "plain", "-t", "registry:5000/app:1", "--push", context]);
            Assert.True(build.ExitCode == 0, build + Diagnostics(project));
            Took("farm build --farm (four RUN stages, four COPY steps, push)");

            var builds = JsonNode.Parse(await http.GetStringAsync(new Uri($"{farmUrl}/api/builds")))!.AsArray();
            var buildId = (string?)Assert.Single(builds)!["buildId"];
            var steps = JsonNode.Parse(await http.GetStringAsync(new Uri($"{farmUrl}/builds/{buildId}")))!["steps"]!.AsArray();
            var ranOn = steps.Where(s => ((string?)s!["display"])?.StartsWith("RUN", StringComparison.Ordinal) == true)
                .Select(s => (string?)s!["worker"]).ToList();
            Assert.Equal(4, ranOn.Count);
            Assert.All(ranOn, w => Assert.Contains(w, workers));
            Assert.True(ranOn.Distinct().Count() > 1, $"every RUN step ran on {ranOn[0]}; workers: {string.Join(", ", workers)}");

            // The pushed image, from the host through the published port, runs under podman.
            var image = $"{published}/app:1";
            Assert.Equal("a\nb\nc\nd\n", await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image));
        }
        finally
        {
            phase.Restart();
            await TearDownAsync(env, compose, project, [.. Targets.Select(t => $"{images}/{t}:test"), $"{published}/app:1"]);
            Took("compose down -v and removing the images");
            await FarmCli.RunAsync(env, null, "daemon", "stop");
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// <c>compose down -v</c>, then whatever it leaves of the project (containers, the workers' anonymous volumes, the
    /// network) and the images; each step runs even when one before failed.
    /// </summary>
    private static async Task TearDownAsync(Dictionary<string, string> env, string[] compose, string project, string[] images)
    {
        var label = $"label=io.podman.compose.project={project}";
        var volumes = new List<string>();
        List<Func<Task>> steps =
        [
            async () =>
            {
                // Debian's podman-compose removes containers without their anonymous volumes: note them first.
                foreach (var container in Lines(await Tool.RunAsync("podman", "ps", "-a", "-q", "--filter", label)))
                {
                    volumes.AddRange(Lines(await Tool.RunAsync("podman", "inspect", "--format", "{{range .Mounts}}{{.Name}}\n{{end}}", container)));
                }
            },
            () => Tool.RunAsync(env, "podman-compose", [.. compose, "down", "-v"]),
            async () =>
            {
                foreach (var container in Lines(await Tool.RunAsync("podman", "ps", "-a", "-q", "--filter", label)))
                {
                    await Tool.RunAsync("podman", "rm", "-f", "-v", container);
                }
            },
            async () =>
            {
                var present = Lines(await Tool.RunAsync("podman", "volume", "ls", "-q"));
                foreach (var volume in volumes.Concat(Lines(await Tool.RunAsync("podman", "volume", "ls", "-q", "--filter", label))).Distinct().Where(present.Contains))
                {
                    await Tool.RunAsync("podman", "volume", "rm", "-f", volume);
                }
            },
            async () =>
            {
                if (Lines(await Tool.RunAsync("podman", "network", "ls", "-q", "--filter", $"name=^{project}_default$")).Count > 0)
                {
                    await Tool.RunAsync("podman", "network", "rm", "-f", $"{project}_default");
                }
            },
            async () =>
            {
                // rmi --ignore rather than a listing first: `podman images` fails outright when another test removes an
                // image while it lists (the multi-platform tests pull and remove theirs).
                foreach (var image in images)
                {
                    await Tool.RunAsync("podman", "rmi", "-f", "--ignore", image);
                }
            },
        ];
        Exception? first = null;
        foreach (var step in steps)
        {
            try
            {
                await step();
            }
            catch (InvalidOperationException e)
            {
                first ??= e;
            }
        }

        if (first is not null)
        {
            throw first;
        }
    }

    /// <summary>What a failed wait or build appends: the last lines of the coordinator's and the workers' logs.</summary>
    private static string Diagnostics(string project)
    {
        var names = new[] { "coordinator_1", "worker_1", "worker_2", "worker_3", "rabbitmq_1" };
        return string.Concat(names.Select(n =>
        {
            string tail;
            try
            {
                tail = Tool.RunAsync("podman", "logs", "--tail", "30", $"{project}_{n}").GetAwaiter().GetResult();
            }
            catch (InvalidOperationException e)
            {
                tail = e.Message;
            }

            return $"{Environment.NewLine}--- {n}:{Environment.NewLine}{tail}";
        }));
    }

    private static List<string> Lines(string output) => [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, result.ToString());
}
