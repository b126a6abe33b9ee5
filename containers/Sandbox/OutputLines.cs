using System.Text;
using Farm.Oci.IO;

namespace Farm.Containers.Sandbox;

/// <summary>
/// A RUN step's output as lines: two write-only streams (stdout and stderr) for the executor that cut what the
/// process writes into lines (<c>\n</c>, <c>\r\n</c> or a lone <c>\r</c>, as <see cref="TextReader.ReadLine"/>
/// does), pass each to the handler one call at a time, and keep the last ones for a failure report.
/// </summary>
internal sealed class OutputLines : IDisposable
{
    private readonly Func<OutputLine, CancellationToken, ValueTask>? _onOutput;
    private readonly int _tailCapacity;
    private readonly Queue<OutputLine> _tail = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly LineStream _stdout;
    private readonly LineStream _stderr;
    private Exception? _handlerError;

    public OutputLines(Func<OutputLine, CancellationToken, ValueTask>? onOutput, int tailCapacity)
    {
        _onOutput = onOutput;
        _tailCapacity = tailCapacity;
        _stdout = new LineStream(this, OutputStream.Stdout);
        _stderr = new LineStream(this, OutputStream.Stderr);
    }

    public Stream Stdout => _stdout;

    public Stream Stderr => _stderr;

    /// <summary>What the handler threw, when it did (the executor then stopped the process).</summary>
    public Exception? HandlerError => Volatile.Read(ref _handlerError);

    /// <summary>The last lines, stdout and stderr interleaved in arrival order.</summary>
    public IReadOnlyList<OutputLine> Tail()
    {
        lock (_tail)
        {
            return [.. _tail];
        }
    }

    /// <summary>Passes on what the process wrote after its last line break, once its output ended.</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        await _stdout.CompleteAsync(cancellationToken).ConfigureAwait(false);
        await _stderr.CompleteAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _gate.Dispose();
        _stdout.Dispose();
        _stderr.Dispose();
    }

    private async ValueTask EmitAsync(OutputLine line, CancellationToken cancellationToken)
    {
        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > _tailCapacity)
            {
                _tail.Dequeue();
            }
        }

        if (_onOutput is null || HandlerError is not null)
        {
            return;
        }

        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await _onOutput(line, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            Interlocked.CompareExchange(ref _handlerError, e, null);
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    private sealed class LineStream(OutputLines owner, OutputStream stream) : WriteOnlyStream
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly StringBuilder _line = new();
        private char[] _chars = new char[4096];
        private bool _afterCarriageReturn;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var count = _decoder.GetCharCount(buffer.Span, flush: false);
            if (count > _chars.Length)
            {
                _chars = new char[count];
            }

            count = _decoder.GetChars(buffer.Span, _chars, flush: false);
            for (var i = 0; i < count; i++)
            {
                var c = _chars[i];
                if (c == '\n' && _afterCarriageReturn)
                {
                    // The second half of \r\n, split across two writes or not.
                    _afterCarriageReturn = false;
                    continue;
                }

                _afterCarriageReturn = c == '\r';
                if (c is '\n' or '\r')
                {
                    await EmitLineAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _line.Append(c);
                }
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public async ValueTask CompleteAsync(CancellationToken cancellationToken)
        {
            var count = _decoder.GetChars([], _chars, flush: true);
            _line.Append(_chars, 0, count);
            if (_line.Length > 0)
            {
                await EmitLineAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        private ValueTask EmitLineAsync(CancellationToken cancellationToken)
        {
            var text = _line.ToString();
            _line.Clear();
            return owner.EmitAsync(new OutputLine(stream, text), cancellationToken);
        }
    }
}
