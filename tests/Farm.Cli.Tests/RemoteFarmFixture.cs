using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A remote farm as processes, for <c>farm build --farm</c>, <c>submit</c>, <c>status</c> and <c>logs</c>: one
/// coordinator (no Redis, cache store in a fresh repository of the anonymous registry) and one worker on a RabbitMQ
/// virtual host made for this class; a busybox base pushed to the registry (<see cref="Base"/>).
/// </summary>
public sealed class RemoteFarmFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-remote-").FullName;

    public string Base => $"{Repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public Dictionary<string, string> Env => FarmCli.ClientEnv(Directory, _coordinator?.Url, _vhost?.AmqpUrl ?? string.Empty);

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-cli-");
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"));
        _worker = WorkerProcess.Start("cli-remote-worker", Path.Combine(Directory, "w"), _vhost.Name);

        Ok(await Farm("import", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await Farm("push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Diagnostics());
    }

    internal Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _vhost);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
