using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Farm.Oci.Net;

namespace Farm.Testing;

/// <summary>A coordinator process started with <c>dotnet Farm.Coordinator.dll</c>; disposing stops it (SIGTERM, then SIGKILL).</summary>
public sealed class CoordinatorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private CoordinatorProcess(IReadOnlyDictionary<string, string> environment, int httpPort, string? netns = null, string address = "127.0.0.1")
    {
        _process = FarmProcess.Start(FarmProcess.Dll("coordinator/host", "farm-coordinator"), environment, _output, netns);
        // A certificate configured: the API is HTTPS (Farm:Coordinator:Tls).
        var scheme = environment.ContainsKey("Farm__Coordinator__Tls__CertificatePath") ? "https" : "http";
        Url = $"{scheme}://{address}:{httpPort.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The process id, to find it among a host's processes.</summary>
    public int Id => _process.Id;

    /// <summary>The HTTP API, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Url { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts a coordinator without Redis on <paramref name="amqpUrl"/> (a test's virtual host), HTTP on
    /// <paramref name="httpPort"/> (0: a free one), silo and gateway on free ports, its layers in <paramref name="cacheStore"/>;
    /// <paramref name="environment"/> adds variables or overrides these.
    /// </summary>
    public static CoordinatorProcess Start(string amqpUrl, int httpPort, string cacheStore, string stateDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        httpPort = httpPort == 0 ? FreePorts.Tcp() : httpPort;
        var variables = new Dictionary<string, string>
        {
            ["FARM_RABBITMQ"] = amqpUrl,
            ["Farm__Coordinator__HttpPort"] = httpPort.ToString(CultureInfo.InvariantCulture),
            ["Farm__Coordinator__SiloPort"] = FreePorts.Tcp().ToString(CultureInfo.InvariantCulture),
            ["Farm__Coordinator__GatewayPort"] = FreePorts.Tcp().ToString(CultureInfo.InvariantCulture),
            ["Farm__Coordinator__JobTimeout"] = "00:05:00",
            ["Farm__Builds__CacheStore"] = cacheStore,
            ["Farm__Builds__StateDirectory"] = stateDirectory,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            variables[key] = value;
        }

        return new CoordinatorProcess(variables, httpPort);
    }

    /// <summary>
    /// Starts a coordinator on a host of <see cref="FarmHosts"/> (network namespace <paramref name="netns"/>) with exactly
    /// <paramref name="environment"/>; its API is at <c>http://<paramref name="address"/>:<paramref name="httpPort"/></c>.
    /// </summary>
    public static CoordinatorProcess StartOnHost(string netns, string address, int httpPort, IReadOnlyDictionary<string, string> environment) =>
        new(environment, httpPort, netns, address);

    /// <summary>Waits until <c>/healthz</c> answers (the silo and the bus are up), or fails with the process's output.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        // Only whether it answers: the tests that use TLS check the certificate with their own clients.
        using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator }) { Timeout = TimeSpan.FromSeconds(3) };
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await http.GetAsync(new Uri(Url + "/healthz")).ConfigureAwait(false);
                    return response.IsSuccessStatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            },
            timeout,
            () => $"the coordinator process to answer {Url}/healthz{Environment.NewLine}{OutputTail()}").ConfigureAwait(false);
    }

    /// <summary>Every line the process wrote so far, standard output and error.</summary>
    public string Output() => string.Join(Environment.NewLine, _output);

    /// <summary>The exit code once it exited by itself within <paramref name="timeout"/> (a coordinator that refuses its settings), or fails.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the coordinator process did not exit within {timeout}{Environment.NewLine}{OutputTail()}");
        }

        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the process gets no chance to leave the cluster, hand anything over or clean up.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>The HTTP status <c>/healthz</c> answers with, or null when nothing answers.</summary>
    public async Task<int?> HealthAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync(new Uri(Url + "/healthz")).ConfigureAwait(false);
            return (int)response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    public string OutputTail() => FarmProcess.Tail(_output);

    /// <summary>
    /// An HTTP client of this coordinator's API sending <paramref name="token"/> (none: anonymous); with
    /// <paramref name="caPath"/>, the server's certificate must chain to that CA (PEM) alone.
    /// </summary>
    public HttpClient Http(string? token, string? caPath = null)
    {
        var handler = new SocketsHttpHandler();
        if (caPath is not null)
        {
            var policy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
            {
                TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
                RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.Add(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(caPath));
            handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions { CertificateChainPolicy = policy };
        }

        var http = new HttpClient(handler) { BaseAddress = new Uri(Url + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    /// <summary>
    /// <c>farm-coordinator token create --tenant TENANT --role ROLE</c>: the token (shown once) and the line for the
    /// tokens file, which must not hold the token itself.
    /// </summary>
    public static async Task<(string Token, string Line)> MintTokenAsync(string tenant, string role = "build")
    {
        var output = await Tool.RunAsync("dotnet", FarmProcess.Dll("coordinator/host", "farm-coordinator"), "token", "create", "--tenant", tenant, "--role", role).ConfigureAwait(false);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length != 2 || !lines[0].StartsWith("farm_", StringComparison.Ordinal) || !lines[1].StartsWith($"{tenant} sha256:", StringComparison.Ordinal) || lines[1].Contains(lines[0], StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"token create printed something else than a token and its tokens-file line:{Environment.NewLine}{output}");
        }

        return (lines[0], lines[1]);
    }

    public async ValueTask DisposeAsync()
    {
        await FarmProcess.StopAsync(_process, TimeSpan.FromSeconds(30));
        _process.Dispose();
    }
}
