using Farm.Contracts;
using Farm.Oci;
using Farm.Worker.Platforms;

namespace Farm.Worker.Tests;

/// <summary>
/// Which platforms a worker says it runs (and so which platform queues it consumes): its own, and those whose qemu
/// handler binfmt_misc holds enabled with flag F, read from a directory laid out as /proc/sys/fs/binfmt_misc.
/// </summary>
public sealed class WorkerPlatformsTests : IDisposable
{
    private readonly string _binfmt = Directory.CreateTempSubdirectory("farm-binfmt-").FullName;

    public void Dispose() => Directory.Delete(_binfmt, recursive: true);

    private void Handler(string name, string state, string flags) =>
        File.WriteAllText(Path.Combine(_binfmt, name), $"{state}\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: {flags}\noffset 0\nmagic 7f454c46\nmask ffffffff\n");

    [Fact]
    public void A_qemu_handler_with_flag_F_adds_its_platform_as_emulated()
    {
        // riscv64 and s390x: platforms no machine of these tests runs natively.
        Handler("qemu-riscv64", "enabled", "POF");
        Handler("qemu-ppc64le", "enabled", "PO");
        Handler("qemu-s390x", "disabled", "POF");

        var platforms = WorkerPlatforms.Detect(null, _binfmt);

        Assert.Equal([new WorkerPlatform(FarmPlatforms.Native, false), new WorkerPlatform("linux/riscv64", true)], platforms.All);
        Assert.True(platforms.IsEmulated("linux/riscv64"));
        Assert.False(platforms.IsEmulated(FarmPlatforms.Native));
        Assert.False(platforms.Runs("linux/ppc64le"));
        Assert.False(platforms.Runs("linux/s390x"));
    }

    [Fact]
    public void Configured_platforms_narrow_the_list_and_one_it_cannot_run_stops_the_worker()
    {
        Handler("qemu-riscv64", "enabled", "POF");

        var nativeOnly = WorkerPlatforms.Detect([FarmPlatforms.Native], _binfmt);
        Assert.Equal([new WorkerPlatform(FarmPlatforms.Native, false)], nativeOnly.All);
        Assert.False(nativeOnly.Runs("linux/riscv64"));
        Assert.Equal([new WorkerPlatform("linux/riscv64", true)], WorkerPlatforms.Detect(["linux/riscv64"], _binfmt).All);

        var error = Assert.Throws<InvalidWorkerPlatformException>(() => WorkerPlatforms.Detect([FarmPlatforms.Native, "linux/s390x"], _binfmt));
        Assert.Equal(FarmErrorCodes.InvalidWorkerPlatform, error.Code);
        Assert.Contains("linux/s390x", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidWorkerPlatformException>(() => WorkerPlatforms.Detect(["linux//"], _binfmt));
    }

    [Theory]
    [InlineData("linux/amd64", "linux/amd64")]
    [InlineData("linux/x86_64", "linux/amd64")]
    [InlineData("aarch64", "linux/arm64")]
    [InlineData("linux/arm64/v8", "linux/arm64")]
    [InlineData("LINUX/ARM/v7", "linux/arm/v7")]
    [InlineData("linux//", null)]
    [InlineData("linux/arm64/v8/x", null)]
    [InlineData("", null)]
    public void Platforms_are_normalized_as_containerd_does(string text, string? expected) =>
        Assert.Equal(expected, Platform.TryParse(text)?.ToString());

    [Fact]
    public void A_platform_queue_is_never_a_worker_queue_name()
    {
        Assert.Equal("farm-build-layer-linux-arm64", FarmPlatforms.QueueName("linux/arm64"));
        Assert.Equal("farm-build-layer-linux-arm-v7", FarmPlatforms.QueueName("linux/arm/v7"));
        Assert.DoesNotContain('.', FarmPlatforms.QueueName("linux/arm64"));
    }
}
