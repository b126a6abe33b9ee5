using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A private farm state directory and docker config for one test class, with a busybox image (<c>bb</c>: busybox-static,
/// its applets, /www, passwd with root and nobody, EXPOSE 80 and 81) imported; every container is removed with
/// <c>farm rm -f</c> at the end.
/// </summary>
public sealed class ContainerFixture : IAsyncLifetime
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-ctr-").FullName;

    public string StateDirectory => Path.Combine(Directory, "state");

    public Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = StateDirectory,
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
    };

    internal Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    public async Task<string> Ok(params string[] args)
    {
        var result = await Farm(args);
        Assert.True(result.ExitCode == 0, $"farm {string.Join(' ', args)} exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
        return result.Stdout;
    }

    public async Task InitializeAsync()
    {
        foreach (var tool in (string[])["runc", "slirp4netns", "ip"])
        {
            Assert.True(File.Exists($"/usr/sbin/{tool}") || File.Exists($"/usr/bin/{tool}") || File.Exists($"/sbin/{tool}"), $"{tool} is missing: run infra/install.sh");
        }

        await Ok("import", "-c", "EXPOSE 80 81", "-c", "CMD [\"sh\"]", "-m", "busybox", BusyboxRootfs(), "bb");
    }

    public async Task DisposeAsync()
    {
        var ids = (await Farm("ps", "-aq")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var id in ids)
        {
            await Farm("rm", "-f", id);
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>Waits until http://127.0.0.1:PORT/PATH answers 200 with <paramref name="body"/>.</summary>
    public static async Task ServesAsync(int port, string path, string body)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? last = null;
        await Wait.UntilAsync(async () =>
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/{path}"));
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                return response.IsSuccessStatusCode && last.EndsWith(body, StringComparison.Ordinal);
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
                return false;
            }
            catch (TaskCanceledException e)
            {
                last = e.Message;
                return false;
            }
        }, TimeSpan.FromSeconds(60), () => $"http://127.0.0.1:{port}/{path} to serve '{body.Trim()}' (last answer: {last})");
    }

    /// <summary>busybox with /www, /tmp, /etc/passwd and /etc/group, as a rootfs tar.</summary>
    private string BusyboxRootfs() => Testing.BusyboxRootfs.Write(
        Path.Combine(Directory, "rootfs.tar"),
        ["www", "tmp", "etc"],
        new Dictionary<string, string>
        {
            ["etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
            ["etc/group"] = "root:x:0:\nnogroup:x:65534:\n",
        });
}
