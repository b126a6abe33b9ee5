using System.Formats.Tar;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Farm.Worker.Copy;

namespace Farm.Worker.Tests;

public sealed class AddOperationTests : IDisposable
{
    private readonly CopySandbox _box = new();
    private readonly HttpClient _http = new();
    private readonly CopyOperation _copy;

    public AddOperationTests()
    {
        _copy = new CopyOperation(_http);
    }

    public void Dispose()
    {
        _http.Dispose();
        _box.Dispose();
    }

    private Task<CopyResult> Add(CopyRequest request) => _copy.AddAsync(request, CancellationToken.None);

    /// <summary>Makes payload.tar (one dir, one file owned 1234:5678, one symlink) and compresses it with the named tool.</summary>
    private string MakeArchive(string compressor)
    {
        var src = Path.Combine(_box.Root, "payload");
        Directory.CreateDirectory(Path.Combine(src, "pkg/bin"));
        File.WriteAllText(Path.Combine(src, "pkg/bin/tool"), "tool");
        File.CreateSymbolicLink(Path.Combine(src, "pkg/current"), "bin/tool");
        var tar = _box.InContext("payload.tar");
        Posix.Run(_box.Root, "tar", "-C", src, "--owner=1234", "--group=5678", "--numeric-owner", "-cf", tar, "pkg");
        if (compressor.Length == 0)
        {
            return "payload.tar";
        }

        // zstd keeps its input unless told otherwise; the others replace it.
        Posix.Run(_box.Context, compressor, compressor == "zstd" ? ["-q", "--rm", "payload.tar"] : ["-q", "payload.tar"]);
        var compressed = Directory.GetFiles(_box.Context, "payload.tar.*").Single();
        // Named without a telling extension: ADD must recognise the archive by its content.
        File.Move(compressed, _box.InContext("payload.bin"));
        return "payload.bin";
    }

    [Theory]
    [InlineData("")]
    [InlineData("gzip")]
    [InlineData("bzip2")]
    [InlineData("xz")]
    [InlineData("zstd")]
    public async Task A_local_archive_is_extracted_keeping_its_owners(string compressor)
    {
        var archive = MakeArchive(compressor);

        var result = await Add(_box.Request("/opt", archive));

        Assert.Equal("tool", File.ReadAllText(_box.InTarget("opt/pkg/bin/tool")));
        Assert.Equal("bin/tool", new FileInfo(_box.InTarget("opt/pkg/current")).LinkTarget);
        var (uid, gid, _) = Posix.Stat(_box.InTarget("opt/pkg/bin/tool"));
        Assert.Equal((1234u, 5678u), (uid, gid));
        Assert.False(File.Exists(_box.InTarget("opt/" + archive)));
        Assert.Equal(1, result.Files);
    }

    [Fact]
    public async Task Chown_overrides_the_owners_in_the_archive()
    {
        var archive = MakeArchive("gzip");

        await Add(_box.Request("/opt/", archive) with { Chown = "7:8" });

        var (uid, gid, _) = Posix.Stat(_box.InTarget("opt/pkg/bin/tool"));
        Assert.Equal((7u, 8u), (uid, gid));
    }

    [Fact]
    public async Task Copy_does_not_extract_archives()
    {
        var archive = MakeArchive("gzip");

        await _copy.CopyAsync(_box.Request("/opt/", archive), CancellationToken.None);

        Assert.True(File.Exists(_box.InTarget("opt/" + archive)));
        Assert.False(Directory.Exists(_box.InTarget("opt/pkg")));
    }

    [Fact]
    public async Task A_file_that_is_not_an_archive_is_copied()
    {
        _box.WriteContext("notes.tar.gz", "just text pretending");

        await Add(_box.Request("/docs/", "notes.tar.gz"));

        Assert.Equal("just text pretending", File.ReadAllText(_box.InTarget("docs/notes.tar.gz")));
    }

    public static TheoryData<string> HostileArchives => ["dotdot", "symlink-escape", "through-own-symlink", "hardlink-escape"];

    [Theory]
    [MemberData(nameof(HostileArchives))]
    public async Task A_hostile_archive_is_refused_and_nothing_is_extracted(string kind)
    {
        var outside = Path.Combine(_box.Root, "outside");
        Directory.CreateDirectory(outside);
        var path = _box.InContext("evil.tar");
        using (var stream = File.Create(path))
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax))
        {
            writer.WriteEntry(TarFile("harmless.txt", "fine"));
            switch (kind)
            {
                case "dotdot":
                    writer.WriteEntry(TarFile("../../outside/pwned", "owned"));
                    break;
                case "symlink-escape":
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "up") { LinkName = "../../../outside" });
                    break;
                case "through-own-symlink":
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "esc") { LinkName = outside });
                    writer.WriteEntry(TarFile("esc/pwned", "owned"));
                    break;
                default:
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "passwd") { LinkName = "../../../etc/passwd" });
                    break;
            }
        }

        var e = await Assert.ThrowsAsync<UnsafeArchiveException>(() => Add(_box.Request("/x/", "evil.tar")));

        Assert.StartsWith("FARM1208:", e.Message);
        Assert.Empty(_box.TargetTree());
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    [Fact]
    public async Task Absolute_symlinks_in_an_archive_resolve_inside_the_target()
    {
        var path = _box.InContext("links.tar");
        using (var stream = File.Create(path))
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "cfg") { LinkName = "/etc/app" });
        }

        Directory.CreateDirectory(_box.InTarget("x"));
        File.CreateSymbolicLink(_box.InTarget("x/lib"), "/usr/lib");

        await Add(_box.Request("/x/", "links.tar"));

        Assert.Equal("/etc/app", new FileInfo(_box.InTarget("x/cfg")).LinkTarget);
    }

    [Fact]
    public async Task A_url_is_downloaded_with_mode_0600_and_its_last_modified_time()
    {
        var body = "remote content"u8.ToArray();
        var lastModified = new DateTimeOffset(2020, 5, 6, 7, 8, 9, TimeSpan.Zero);
        using var server = new TinyServer(body, lastModified);
        var sha = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));

        var result = await Add(_box.Request("/downloads/", server.Url("files/hello.txt")) with { Checksum = sha });

        var file = _box.InTarget("downloads/hello.txt");
        Assert.Equal(body, File.ReadAllBytes(file));
        Assert.Equal(0x180u, Posix.Stat(file).Mode & 0xFFF);
        Assert.Equal((0u, 0u), (Posix.Stat(file).Uid, Posix.Stat(file).Gid));
        Assert.Equal(lastModified.UtcDateTime, File.GetLastWriteTimeUtc(file));
        Assert.Equal(body.Length, result.Bytes);
    }

    [Fact]
    public async Task A_url_with_a_wrong_checksum_is_refused_naming_both_digests()
    {
        var body = "remote content"u8.ToArray();
        using var server = new TinyServer(body, null);
        var wrong = "sha256:" + new string('0', 64);
        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));

        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(
            () => Add(_box.Request("/downloads/", server.Url("files/hello.txt")) with { Checksum = wrong }));

        Assert.StartsWith("FARM1207:", e.Message);
        Assert.Contains(wrong, e.Message);
        Assert.Contains(actual, e.Message);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task A_remote_archive_is_not_extracted()
    {
        var archive = MakeArchive("gzip");
        using var server = new TinyServer(File.ReadAllBytes(_box.InContext(archive)), null);

        await Add(_box.Request("/dl/pkg.tgz", server.Url("pkg.tgz")));

        Assert.True(File.Exists(_box.InTarget("dl/pkg.tgz")));
        Assert.False(Directory.Exists(_box.InTarget("dl/pkg")));
    }

    [Fact]
    public async Task Checksum_on_a_local_source_is_refused()
    {
        _box.WriteContext("a.txt", "a");

        await Assert.ThrowsAsync<CopyOptionException>(
            () => Add(_box.Request("/a.txt", "a.txt") with { Checksum = "sha256:" + new string('0', 64) }));
    }

    [Fact]
    public async Task With_the_fence_an_ADD_from_this_machine_is_refused_before_any_request_and_writes_nothing()
    {
        using var server = new TinyServer("payload"u8.ToArray(), null);
        var fence = WorkerFetchRules.Fence(() => []);
        using var http = new HttpClient(fence.Handler(TimeSpan.FromSeconds(10)));
        var fenced = new CopyOperation(http, fence);

        var refused = await Assert.ThrowsAsync<FetchRefusedException>(
            () => fenced.AddAsync(_box.Request("/dl/", server.Url("secret.txt")), CancellationToken.None));

        Assert.StartsWith($"FARM1213: ADD source '{server.Url("secret.txt")}': a worker does not fetch from 127.0.0.1, which is this machine.", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Requests);
        Assert.False(Directory.Exists(_box.InTarget("dl")));
    }

    [Fact]
    public async Task With_the_fence_a_git_source_on_this_machine_is_refused_before_git_connects()
    {
        using var server = new TinyServer([], null);
        var fenced = new CopyOperation(_http, WorkerFetchRules.Fence(() => []));
        var source = $"git://127.0.0.1:{server.Port}/repo.git#main";

        var refused = await Assert.ThrowsAsync<FetchRefusedException>(
            () => fenced.AddAsync(_box.Request("/src/", source), CancellationToken.None));

        Assert.StartsWith($"FARM1213: ADD source '{source}': a worker does not fetch from 127.0.0.1, which is this machine.", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Requests);
    }

    [Theory]
    [InlineData("127.0.0.5", "this machine")]
    [InlineData("::1", "this machine")]
    [InlineData("::ffff:127.0.0.1", "this machine")]
    [InlineData("0.0.0.0", "this machine")]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("224.0.0.251", "multicast")]
    [InlineData("255.255.255.255", "broadcast")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("10.20.0.7", "10.20.0.0/24")]
    [InlineData("10.20.1.7", null)]
    [InlineData("198.51.100.7", null)]
    public void The_fence_refuses_this_machine_link_local_multicast_and_the_denied_networks(string address, string? why)
    {
        var refused = WorkerFetchRules.Refusal(IPAddress.Parse(address), [IPNetwork.Parse("10.20.0.0/24")]);

        if (why is null)
        {
            Assert.Null(refused);
        }
        else
        {
            Assert.Contains(why, refused, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_fence_refuses_every_address_of_this_machine_not_only_loopback()
    {
        var own = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address).ToList();

        Assert.Contains(own, a => !IPAddress.IsLoopback(a));
        Assert.All(own, a => Assert.Equal("this machine", WorkerFetchRules.Refusal(a, [])));
    }

    private static PaxTarEntry TarFile(string name, string content) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) };

    /// <summary>
    /// Serves one body for every GET on 127.0.0.1, for as long as the test runs. A plain socket server: it keeps
    /// the port it was given, where HttpListener on Linux re-binds on close and can collide with parallel tests.
    /// </summary>
    private sealed class TinyServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _requests;

        public TinyServer(byte[] body, DateTimeOffset? lastModified)
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            var header = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n" +
                $"Content-Length: {body.Length}\r\n" +
                (lastModified is { } lm ? $"Last-Modified: {lm.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}\r\n" : string.Empty) +
                "\r\n";
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try
                    {
                        client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    Interlocked.Increment(ref _requests);
                    using (client)
                    try
                    {
                        var stream = client.GetStream();
                        var request = new byte[8192];
                        var seen = 0;
                        while (seen < request.Length && !System.Text.Encoding.ASCII.GetString(request, 0, seen).Contains("\r\n\r\n", StringComparison.Ordinal))
                        {
                            var n = await stream.ReadAsync(request.AsMemory(seen), _stop.Token);
                            if (n == 0)
                            {
                                break;
                            }

                            seen += n;
                        }

                        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(header), _stop.Token);
                        await stream.WriteAsync(body, _stop.Token);
                    }
                    catch (IOException)
                    {
                        // The client hung up early (a refused download); serve the next one.
                    }
                }
            });
        }

        public int Port { get; }

        /// <summary>How many connections the server accepted.</summary>
        public int Requests => Volatile.Read(ref _requests);

        public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _loop.Wait(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }
    }
}
